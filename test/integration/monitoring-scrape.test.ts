import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dashboardQueries } from '../../monitoring/dashboard.ts';
import { JOBS, prometheusFiles } from '../../monitoring/prometheus-config.ts';
import { type AppProcess, startApp } from '../helpers/app.ts';
import {
  alertRules,
  forPrometheus,
  metricNames,
  PROMETHEUS_INTERNAL,
  sampleNames,
} from '../helpers/monitoring.ts';
import { type NginxServer, startNginx } from '../helpers/nginx.ts';
import { type CertdProcess, certdDirs, DOMAIN, startCertd } from '../helpers/pebble.ts';
import { freePort, registerTempDir, type ServerProcess, spawnServer, waitFor } from '../helpers/processes.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

// The monitoring against the real programs: the proxy (node app/src/main.ts) with traffic through
// it, certd (self-signed), Debian's nginx with the repository's configuration and Debian's
// prometheus-nginx-exporter reading its stub_status. Every metric a dashboard query or an alert
// names must be in their scrapes; then Debian's Prometheus, configured by the same generator as
// the appliance's, scrapes all of them, evaluates the rules and answers every dashboard query.

const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Count to three.' }] };
const EXPORTER = process.env.NGINX_EXPORTER ?? '/usr/bin/prometheus-nginx-exporter';
const PROMETHEUS = process.env.PROMETHEUS ?? '/usr/bin/prometheus';

const text = async (url: string) => {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return res.text();
};

/** GET over TLS through nginx (the self-signed placeholder, so no verification). */
function getThroughNginx(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, servername: DOMAIN, rejectUnauthorized: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('monitoring against a running proxy, certd and nginx', { timeout: 120_000 }, () => {
  let stack: TestStack;
  let app: AppProcess;
  let certd: CertdProcess;
  let nginx: NginxServer;
  let exporter: ServerProcess;
  let prometheus: ServerProcess | undefined;
  let exporterPort: number;
  let promUrl: string;
  const scraped = new Set<string>();

  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-monitoring-one'] });
    app = await startApp({ env: stack.env });
    const { certDir, webroot } = certdDirs();
    certd = await startCertd({
      DOMAIN,
      ACME_DIRECTORY: 'self-signed',
      CERT_DIR: certDir,
      ACME_WEBROOT: webroot,
    });
    nginx = await startNginx({
      appUpstream: `127.0.0.1:${app.port}`,
      certDir,
      webroot,
      certWaitSeconds: 15,
      watchCerts: false,
    });
    exporterPort = await freePort();
    exporter = await spawnServer(EXPORTER, [
      `--nginx.scrape-uri=${nginx.statusUrl}/stub_status`,
      `--web.listen-address=127.0.0.1:${exporterPort}`,
    ]);
    await waitFor(() => text(`http://127.0.0.1:${exporterPort}/metrics`), { what: 'the nginx exporter' });

    // Traffic: answers, a 429, tokens - so the labelled series exist, as they do in service.
    const { key } = await stack.issueKey({ rpm: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(CHAT),
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.equal(await getThroughNginx(nginx.httpsPort, '/health'), 200);
  });

  after(async () => {
    await prometheus?.stop('SIGTERM', 15_000);
    await exporter?.stop();
    await nginx?.stop();
    await certd?.stop();
    await app?.stop();
    await stack?.destroy();
  });

  it('every metric a dashboard query or an alert names is in a scrape of the proxy, certd or nginx', async () => {
    await waitFor(async () => (await usageWritten(app)) >= 3, {
      timeoutMs: 15_000,
      what: 'usage rows written',
    });
    for (const url of [
      `http://127.0.0.1:${app.metricsPort}/metrics`,
      `http://127.0.0.1:${certd.metricsPort}/metrics`,
      `http://127.0.0.1:${exporterPort}/metrics`,
    ]) {
      for (const name of sampleNames(await text(url))) scraped.add(name);
    }
    const queries = [...dashboardQueries(), ...alertRules().map((r) => r.expr)];
    const internal: readonly string[] = PROMETHEUS_INTERNAL;
    const missing = new Set<string>();
    for (const q of queries) {
      const names = metricNames(q);
      assert.ok(names.length > 0, `${q} names no metric`);
      for (const name of names) if (!internal.includes(name) && !scraped.has(name)) missing.add(name);
    }
    assert.deepEqual([...missing], [], 'named in a query, absent from every scrape');
  });

  it('the dependency gauge says 1 for Postgres and Redis, and 0 for Redis once it is gone', async () => {
    const series = async () => (await text(`http://127.0.0.1:${app.metricsPort}/metrics`)).split('\n');
    const lines = await series();
    assert.ok(lines.includes('gpt_proxy_dependency_up{service="database"} 1'), lines.join('\n'));
    assert.ok(lines.includes('gpt_proxy_dependency_up{service="redis"} 1'));
    await stack.redis.stop();
    try {
      const down = await series();
      assert.ok(down.includes('gpt_proxy_dependency_up{service="redis"} 0'));
      assert.ok(down.includes('gpt_proxy_dependency_up{service="database"} 1'));
    } finally {
      await stack.redis.start();
    }
    await waitFor(async () => (await series()).includes('gpt_proxy_dependency_up{service="redis"} 1'), {
      timeoutMs: 15_000,
      what: 'Redis reachable again',
    });
  });

  it("Prometheus, configured by the appliance's generator, scrapes them all, runs the rules and every query", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-prometheus-run-'));
    registerTempDir(dir);
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const files = prometheusFiles({
      stack: 'test',
      scrapeInterval: '1s',
      self: `127.0.0.1:${port}`,
      targets: {
        app: { addresses: [`127.0.0.1:${app.metricsPort}`] },
        certd: { addresses: [`127.0.0.1:${certd.metricsPort}`] },
        nginx: { addresses: [`127.0.0.1:${exporterPort}`] },
      },
    });
    for (const f of files) {
      mkdirSync(dirname(join(dir, f.path)), { recursive: true });
      writeFileSync(join(dir, f.path), f.content);
    }
    prometheus = await spawnServer(PROMETHEUS, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
    const up = await waitFor(
      async () => {
        const r = await query('up == 1');
        const jobs = r.map((s) => s.metric.job).sort();
        return jobs.length === 4 ? jobs : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'every target up in Prometheus' },
    );
    assert.deepEqual(up, [JOBS.app, JOBS.certd, JOBS.nginx, 'prometheus'].sort());

    // A few seconds of samples, so rate() has two points in every window.
    await new Promise((r) => setTimeout(r, 3_000));
    for (const q of [...dashboardQueries(), ...alertRules().map((r) => r.expr)]) {
      await query(forPrometheus(q)); // throws unless Prometheus answers "success"
    }
    assert.equal(Number((await query('max(gpt_proxy_upstream_keys{state="active"})'))[0]?.value[1]), 1);
    assert.equal(Number((await query('sum(gpt_proxy_ratelimit_rejections_total)'))[0]?.value[1]), 1);
    assert.ok(Number((await query('sum(gpt_proxy_tokens_total)'))[0]?.value[1]) > 0);

    const rules = await waitFor(
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
          data: { groups: { rules: { name: string; health: string; lastEvaluation: string }[] }[] };
        };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250, what: 'the rules evaluated' },
    );
    assert.deepEqual(
      rules.map((r) => r.name).sort(),
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
    for (const r of rules) assert.equal(r.health, 'ok', r.name);
    const firing = await query('ALERTS');
    assert.deepEqual(
      firing.map((a) => a.metric.alertname),
      [],
      'a healthy appliance (with an upstream key and a fresh certificate) raises no alert',
    );
  });

  async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: [] } };
    assert.equal(body.status, 'success', `${q}: ${body.error ?? ''}`);
    return body.data.result;
  }
});

async function usageWritten(app: AppProcess): Promise<number> {
  const body = await text(`http://127.0.0.1:${app.metricsPort}/metrics`);
  const line = body.split('\n').find((l) => l.startsWith('gpt_proxy_usage_rows_written_total '));
  return Number(line?.split(' ')[1] ?? 0);
}
