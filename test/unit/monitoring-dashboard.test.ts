import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DASHBOARD_UID, DATASOURCE, dashboard, dashboardQueries } from '../../monitoring/dashboard.ts';
import { DASHBOARDS_DIR, dashboardProviders, datasources, grafanaFiles } from '../../monitoring/grafana.ts';
import { forPrometheus, metricNames } from '../helpers/monitoring.ts';
import { registerTempDir } from '../helpers/processes.ts';

// Grafana itself cannot be installed here (no Debian package; its images need Docker), so the
// provisioning files and the dashboard's JSON model are checked for the structure Grafana 11
// reads, and every query is parsed by Prometheus's own parser (promtool, as recording rules).
// That every metric they name exists is checked against live scrapes in
// test/integration/monitoring-scrape.test.ts.

const exec = promisify(execFile);

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource: { uid: string }; instant: boolean; range: boolean }[];
  fieldConfig?: {
    defaults: { unit?: string; thresholds: { steps: { value: number | null; color: string }[] } };
  };
  options?: Record<string, unknown>;
  panels?: unknown[];
}

const model = JSON.parse(JSON.stringify(dashboard())) as {
  uid: string;
  title: string;
  schemaVersion: number;
  editable: boolean;
  panels: Panel[];
  time: { from: string; to: string };
  templating: { list: unknown[] };
};
const panels = model.panels.filter((p) => p.type !== 'row');

describe('the Grafana dashboard (JSON model)', () => {
  it('is a provisioned, read-only dashboard with a stable uid', () => {
    assert.equal(model.uid, DASHBOARD_UID);
    assert.ok(/^[a-zA-Z0-9_-]{1,40}$/.test(model.uid), "Grafana's uid rules");
    assert.equal(model.title, 'gpt-proxy');
    assert.ok(model.schemaVersion >= 36, 'a schema Grafana 11 reads without migrating panels');
    assert.equal(model.editable, false);
    assert.deepEqual(model.templating.list, [], 'no variables: one data source, one stack');
    assert.match(model.time.from, /^now-\d+[mhd]$/);
  });

  it('panels: unique ids, known types, inside the 24-column grid, none overlapping', () => {
    const ids = model.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    const cells = new Set<string>();
    for (const p of model.panels) {
      assert.ok(['row', 'timeseries', 'stat', 'bargauge', 'table'].includes(p.type), p.title);
      const { x, y, w, h } = p.gridPos;
      assert.ok(Number.isInteger(x) && x >= 0 && w > 0 && x + w <= 24, `${p.title}: x ${x} w ${w}`);
      assert.ok(Number.isInteger(y) && y >= 0 && h > 0, p.title);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const cell = `${i},${j}`;
          assert.ok(!cells.has(cell), `${p.title} overlaps another panel at ${cell}`);
          cells.add(cell);
        }
      }
    }
    const rows = model.panels.filter((p) => p.type === 'row');
    assert.ok(rows.length >= 5);
    for (const r of rows) assert.deepEqual([r.gridPos.x, r.gridPos.w, r.gridPos.h], [0, 24, 1], r.title);
  });

  it('every panel queries the provisioned Prometheus, with refIds A, B, … and a description', () => {
    for (const p of panels) {
      assert.deepEqual(p.datasource, DATASOURCE, p.title);
      assert.ok((p.description ?? '').length > 10, `${p.title} says what it shows`);
      assert.ok((p.targets ?? []).length > 0, p.title);
      (p.targets ?? []).forEach((t, i) => {
        assert.equal(t.refId, String.fromCharCode(65 + i), p.title);
        assert.equal(t.datasource.uid, DATASOURCE.uid, p.title);
        assert.ok(t.expr.length > 0 && t.instant !== t.range, p.title);
      });
      const steps = p.fieldConfig?.defaults.thresholds.steps ?? [];
      assert.equal(steps[0]?.value, null, `${p.title}: thresholds start at the base step`);
      for (let i = 1; i < steps.length; i++)
        assert.ok((steps[i]?.value ?? 0) > (steps[i - 1]?.value ?? -Infinity));
    }
  });

  it('covers what the issue asks for', () => {
    const all = dashboardQueries().join('\n');
    for (const metric of [
      'gpt_proxy_requests_total', // requests, errors
      'gpt_proxy_request_duration_seconds_bucket', // latency
      'gpt_proxy_tokens_total', // tokens by model and key
      'gpt_proxy_upstream_keys', // upstream key states
      'gpt_proxy_ratelimit_rejections_total', // rate-limit rejections
      'gpt_proxy_cert_expiry_timestamp_seconds', // certificate expiry
      'gpt_proxy_dependency_up',
      'nginx_connections_active',
    ]) {
      assert.ok(all.includes(metric), metric);
    }
    assert.match(all, /sum by \(key_id\)/, 'tokens by key');
    assert.match(all, /sum by \(model, kind\)/, 'tokens by model');
  });

  it("every query parses with Prometheus's own parser (promtool check rules)", async () => {
    const queries = dashboardQueries();
    for (const q of queries) assert.ok(metricNames(q).length > 0, `${q} names a metric`);
    const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-dashboard-'));
    registerTempDir(dir);
    const rules = {
      groups: [
        {
          name: 'dashboard',
          rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: forPrometheus(q) })),
        },
      ],
    };
    writeFileSync(join(dir, 'dashboard.yml'), JSON.stringify(rules));
    const { stdout } = await exec(process.env.PROMTOOL ?? '/usr/bin/promtool', [
      'check',
      'rules',
      join(dir, 'dashboard.yml'),
    ]);
    assert.match(stdout, new RegExp(`SUCCESS: ${queries.length} rules found`));
  });

  it("upstream keys: each replica's own count, never more keys than exist (promtool evaluates the query)", async () => {
    const expr = panels.find((p) => p.title === 'Upstream keys by state')?.targets?.[0]?.expr ?? '';
    // Three OpenAI keys and no Azure key; r2 has seen a cooldown end that r1 has not yet.
    const counts: Record<string, Record<string, number>> = {
      r1: { active: 2, cooling: 1, disabled: 0 },
      r2: { active: 3, cooling: 0, disabled: 0 },
    };
    const input_series = Object.entries(counts).flatMap(([instance, states]) =>
      Object.entries(states).flatMap(([state, n]) =>
        ['openai', 'azure'].map((provider) => ({
          series: `gpt_proxy_upstream_keys{job="gpt-proxy-app", instance="${instance}", provider="${provider}", state="${state}"}`,
          values: `${provider === 'openai' ? n : 0}x5`,
        })),
      ),
    );
    const exp_samples = Object.entries(counts).flatMap(([instance, states]) =>
      Object.entries(states).map(([state, value]) => ({
        labels: `{instance="${instance}", provider="openai", state="${state}"}`,
        value,
      })),
    );
    const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-dashboard-keys-'));
    registerTempDir(dir);
    const file = join(dir, 'keys.test.yml');
    writeFileSync(
      file,
      JSON.stringify({
        evaluation_interval: '1m',
        tests: [{ interval: '1m', input_series, promql_expr_test: [{ expr, eval_time: '2m', exp_samples }] }],
      }),
    );
    const run = await exec(process.env.PROMTOOL ?? '/usr/bin/promtool', ['test', 'rules', file]).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
    );
    assert.match(run.stdout, /SUCCESS/, run.stdout);
  });
});

describe('Grafana provisioning', () => {
  const files = grafanaFiles({ prometheusUrl: 'http://prometheus:9090', scrapeInterval: '15s' });

  it('one Prometheus data source, the uid the dashboard uses, not editable in the UI', () => {
    const ds = datasources({ prometheusUrl: 'http://prometheus:9090', scrapeInterval: '15s' }) as {
      apiVersion: number;
      datasources: Record<string, unknown>[];
    };
    assert.equal(ds.apiVersion, 1);
    assert.equal(ds.datasources.length, 1);
    assert.deepEqual(
      { type: ds.datasources[0]?.type, uid: ds.datasources[0]?.uid },
      { type: DATASOURCE.type, uid: DATASOURCE.uid },
    );
    assert.equal(ds.datasources[0]?.url, 'http://prometheus:9090');
    assert.equal(ds.datasources[0]?.access, 'proxy', "Grafana's server queries Prometheus, not the browser");
    assert.equal(ds.datasources[0]?.editable, false);
  });

  it('a file provider reading the directory the dashboard is written to', () => {
    const p = dashboardProviders() as {
      apiVersion: number;
      providers: { type: string; options: { path: string } }[];
    };
    assert.equal(p.apiVersion, 1);
    assert.equal(p.providers[0]?.type, 'file');
    assert.equal(p.providers[0]?.options.path, DASHBOARDS_DIR);
    assert.ok(files.some((f) => f.path === `${DASHBOARDS_DIR}/gpt-proxy.json`));
  });

  it('the files are valid YAML/JSON where Grafana looks for them', () => {
    assert.deepEqual(files.map((f) => f.path).sort(), [
      '/etc/grafana/dashboards/gpt-proxy.json',
      '/etc/grafana/provisioning/dashboards/gpt-proxy.yml',
      '/etc/grafana/provisioning/datasources/gpt-proxy.yml',
    ]);
    for (const f of files) {
      const body = f.content.replace(/^#.*\n/, '');
      assert.doesNotThrow(() => JSON.parse(body), f.path); // JSON is YAML as well
    }
  });
});
