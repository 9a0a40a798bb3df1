import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { prometheusSetup } from '../../infra/monitoring.ts';
import { alertRules, alertsTestedFiring, RULE_TESTS_FILE, RULES_FILE } from '../helpers/monitoring.ts';
import { registerTempDir } from '../helpers/processes.ts';

// The Prometheus files the Pulumi program uploads, written out exactly as it generates them and
// checked by Debian's promtool (package `prometheus`): the configuration, the rules, and the
// rules' unit tests - one or more for every alert.

const exec = promisify(execFile);
const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
const RUNBOOK = fileURLToPath(new URL('../../docs/runbook.md', import.meta.url));

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(PROMTOOL, args, { timeout: 60_000 });
    return `${stdout}${stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

describe('Prometheus files, checked by promtool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-prometheus-'));
  registerTempDir(dir);
  for (const f of prometheusSetup('prod')) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.content);
  }

  it('promtool check config: the generated prometheus.yml and the rule file it names', async () => {
    const out = await promtool('check', 'config', join(dir, 'prometheus.yml'));
    assert.match(out, /SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
    assert.match(out, /SUCCESS: \d+ rules found/);
    assert.equal(
      readFileSync(join(dir, 'rules/gpt-proxy.rules.yml'), 'utf8'),
      readFileSync(RULES_FILE, 'utf8'),
    );
  });

  it('promtool check rules', async () => {
    const out = await promtool('check', 'rules', RULES_FILE);
    assert.match(out, new RegExp(`SUCCESS: ${alertRules().length} rules found`));
  });

  it('promtool test rules: every alert fires in a test, and stays quiet where it should', async () => {
    const out = await promtool('test', 'rules', RULE_TESTS_FILE);
    assert.match(out, /SUCCESS/);
    const alerts = alertRules().map((r) => r.alert);
    assert.deepEqual([...alertsTestedFiring()].sort(), [...alerts].sort(), 'each alert has a firing test');
    const tests = readFileSync(RULE_TESTS_FILE, 'utf8');
    for (const alert of alerts) {
      const quiet = new RegExp(`alertname: ${alert}\\n\\s+exp_alerts: \\[\\]`);
      assert.match(tests, quiet, `${alert} also has a case where it must not fire`);
    }
  });

  it('every alert is labelled with a severity, explained, and has its entry in the runbook', () => {
    const runbook = readFileSync(RUNBOOK, 'utf8');
    for (const rule of alertRules()) {
      assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, rule.alert);
      assert.ok((rule.annotations?.summary ?? '').length > 10, rule.alert);
      assert.ok(runbook.includes(`\`${rule.alert}\``), `docs/runbook.md names ${rule.alert}`);
    }
  });
});
