import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../../app/src/config/index.ts';
import { APP_REPLICAS_MAX, DEFAULTS } from '../../../infra/config.ts';
import { APPLIANCE_TARGETS } from '../../../infra/monitoring.ts';
import { prometheusConfig } from '../../../monitoring/prometheus-config.ts';
import { describeFlow } from './flow-invariants.ts';
import { containers, describeGraph, type Expected } from './graph-invariants.ts';
import { deploy } from './harness.ts';
import {
  envOf,
  fileSecret,
  inputs,
  isSecretWrapper,
  materialized,
  ofType,
  one,
  type Registration,
  readRepoFile,
  TYPES,
  type Upload,
  uploadsOf,
} from './registrations.ts';

// The `dev` stack on day two: monitoring on, a weekday backup schedule, a longer retention, and an
// encryption key rotation under way (the new key set, the old one as encryptionKeyPrevious). The
// shared invariants hold for it too (every container's logs bounded, nothing but nginx published,
// secrets secret), and the new parts are as intended.
const ROTATION = { encryptionKey: 'a1'.repeat(32), encryptionKeyPrevious: 'b2'.repeat(32) };
const d = await deploy('dev', ROTATION, {
  monitoring: 'true',
  backupSchedule: '30 2 * * 1-5',
  backupRetention: '14',
});

const expected: Expected = {
  stack: 'dev',
  dockerHost: 'unix:///var/run/docker.sock',
  replicas: 1,
  bindAddress: '127.0.0.1',
  httpPort: 8080,
  httpsPort: 8443,
  acmeDirectory: 'self-signed',
  monitoring: true,
  endpoint: 'https://localhost:8443',
};
describeGraph(d, expected);
describeFlow(d, expected);

const c = containers(d);
const container = (suffix: string) => one(d, TYPES.container, suffix);
const uploads = (r: Registration) => uploadsOf(r) as Array<Upload & { content: string }>;

test('a key rotation under way: the replicas and init-upstream-keys hold both keys, as secrets', () => {
  for (const app of c.app) {
    assert.equal(fileSecret(app, 'ENCRYPTION_KEY'), ROTATION.encryptionKey);
    assert.equal(fileSecret(app, 'ENCRYPTION_KEY_PREVIOUS'), ROTATION.encryptionKeyPrevious);
  }
  const hook = one(d, TYPES.command, 'init-upstream-keys');
  assert.ok(isSecretWrapper(hook.raw.environment));
  const env = inputs(hook).environment as Record<string, string>;
  assert.equal(
    env.ENCRYPTION_KEY_PREVIOUS,
    ROTATION.encryptionKeyPrevious,
    'rows sealed under the old key match',
  );
  assert.match(String(inputs(hook).create), /--env ENCRYPTION_KEY_PREVIOUS /);
});

test('backups: the Postgres image runs scripts/backup.sh on the schedule, keeping backupRetention', () => {
  const i = inputs(c.backup);
  assert.equal(i.name, 'gpt-proxy-dev-backup');
  assert.deepEqual(i.entrypoints, ['/usr/local/bin/gpt-proxy-backup']);
  assert.deepEqual(i.command, ['loop']);
  // The database password as libpq's password file, readable by root (the container's user) only.
  assert.deepEqual(uploads(c.backup), [
    { file: '/usr/local/bin/gpt-proxy-backup', content: readRepoFile('scripts/backup.sh'), executable: true },
    {
      file: '/run/secrets/pgpass',
      content: `postgres:5432:*:gpt_proxy:${fileSecret(c.postgres, 'POSTGRES_PASSWORD')}\n`,
      permissions: '0400',
    },
  ]);
  const env = envOf(c.backup);
  assert.deepEqual(env, {
    PGHOST: 'postgres',
    PGPORT: '5432',
    PGUSER: 'gpt_proxy',
    PGDATABASE: 'gpt_proxy',
    PGPASSFILE: '/run/secrets/pgpass',
    BACKUP_DIR: '/backups',
    BACKUP_SCHEDULE: '30 2 * * 1-5',
    BACKUP_RETENTION: '14',
  });
  assert.deepEqual((i.healthcheck as { tests: string[] }).tests, [
    'CMD',
    '/usr/local/bin/gpt-proxy-backup',
    'health',
  ]);
  assert.equal(i.init, true, 'signals reach the loop; pg_dump children are reaped');
  assert.ok(c.backup.dependencies.includes(c.postgres.urn));
});

test('a backup container replaced after a failed backup is waited on through its retry', () => {
  // Healthy only once the start-up retry has written a backup (scripts/backup.sh, loop): a whole
  // pg_dump and pg_restore read-back. At least as long as a backup under way may take to finish
  // on a stop, and minutes more: a database of a few GB takes that long.
  const { waitTimeout, stopTimeout } = inputs(c.backup);
  assert.ok(Number(waitTimeout) >= Number(stopTimeout), `waitTimeout ${waitTimeout} < stopTimeout`);
  assert.ok(Number(waitTimeout) >= 600, `waitTimeout ${waitTimeout} s: not ten minutes for a retry`);
});

test("Postgres allows every replica's pool twice over (a rolling update), for the most replicas allowed", () => {
  const command = inputs(c.postgres).command as string[];
  assert.equal(command[0], 'postgres', "the image's entrypoint initialises the volume for this command");
  const max = Number(/^max_connections=(\d+)$/.exec(command.at(-1) ?? '')?.[1]);
  assert.equal(command.at(-2), '-c');
  // The replicas' pool size as the app reads it from the environment this program gives it.
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-infra-pool-'));
  let pools: number[];
  try {
    pools = c.app.map((app) => loadConfig(materialized(app, dir), ['database']).database.poolSize);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pool = Math.max(...pools);
  const margin = 10; // the backup's pg_dump, a hook, an operator's psql
  assert.ok(max >= 2 * APP_REPLICAS_MAX * pool + margin, `max_connections=${max}`);
  assert.ok(max <= 500, 'each allowed connection costs shared memory; a few hundred is plenty');
});

test('the backups volume outlives `pulumi destroy`; no other volume does', () => {
  const retained = ofType(d, TYPES.volume).filter((v) => v.retainOnDelete);
  assert.deepEqual(
    retained.map((v) => inputs(v).name),
    ['gpt-proxy-dev-backups'],
  );
});

test('monitoring: pinned images, on the internal metrics network only, nothing published', () => {
  const images = new Map(ofType(d, TYPES.remoteImage).map((r) => [r.name, String(inputs(r).name)]));
  assert.equal(images.get('monitoring-prometheus'), DEFAULTS.images.prometheus);
  assert.equal(images.get('monitoring-grafana'), DEFAULTS.images.grafana);
  assert.equal(images.get('monitoring-nginxExporter'), DEFAULTS.images.nginxExporter);
  assert.deepEqual(c.monitoring.map((m) => inputs(m).name).sort(), [
    'gpt-proxy-dev-grafana',
    'gpt-proxy-dev-nginx-exporter',
    'gpt-proxy-dev-prometheus',
  ]);
  const metrics = inputs(one(d, TYPES.network, 'host-metrics'));
  assert.equal(metrics.internal, true, 'no route out');
  for (const m of c.monitoring) {
    assert.equal(inputs(m).ports, undefined, `${m.name} publishes nothing`);
    assert.deepEqual(inputs(m).capabilities, { drops: ['ALL'] }, m.name);
    assert.match(String(inputs(m).image), /^mock-image-id:(prom|grafana|nginx)\//, m.name);
  }
});

test('Prometheus gets the generated configuration and the rules; it finds every replica by alias', () => {
  const prometheus = container('monitoring-prometheus');
  const files = new Map(uploads(prometheus).map((u) => [u.file, u.content]));
  const config = files.get('/etc/prometheus/prometheus.yml') ?? '';
  assert.equal(config, prometheusConfig({ stack: 'dev', targets: APPLIANCE_TARGETS, scrapeInterval: '15s' }));
  assert.equal(
    files.get('/etc/prometheus/rules/gpt-proxy.rules.yml'),
    readRepoFile('monitoring/rules/gpt-proxy.rules.yml'),
  );
  const parsed = JSON.parse(config.slice(config.indexOf('{'))) as {
    scrape_configs: { job_name: string; dns_sd_configs?: unknown; static_configs?: unknown }[];
  };
  const jobs = Object.fromEntries(parsed.scrape_configs.map((j) => [j.job_name, j]));
  assert.deepEqual(jobs['gpt-proxy-app']?.dns_sd_configs, [
    { names: ['app-metrics'], type: 'A', port: 9464 },
  ]);
  assert.deepEqual(jobs['gpt-proxy-certd']?.static_configs, [{ targets: ['certd:9464'] }]);
  assert.deepEqual(jobs.nginx?.static_configs, [{ targets: ['nginx-exporter:9113'] }]);
  assert.ok(
    (inputs(prometheus).command as string[]).includes('--config.file=/etc/prometheus/prometheus.yml'),
  );
  assert.ok(
    (inputs(prometheus).volumes as { volumeName: string }[]).some(
      (v) => v.volumeName === 'gpt-proxy-dev-prometheus',
    ),
  );
});

test("the exporter reads nginx's stub_status listener, which nginx serves on the metrics network", () => {
  const exporter = inputs(container('monitoring-nginx-exporter'));
  assert.deepEqual(exporter.command, [
    '--nginx.scrape-uri=http://nginx:8081/stub_status',
    '--web.listen-address=:9113',
  ]);
  assert.equal(envOf(c.nginx).NGINX_STATUS_PORT, '8081');
});

test('Grafana: provisioned data source and dashboard, anonymous viewers, a generated admin password kept secret', () => {
  const grafana = container('monitoring-grafana');
  assert.deepEqual(
    uploads(grafana)
      .map((u) => u.file)
      .sort(),
    [
      '/etc/grafana/dashboards/gpt-proxy.json',
      '/etc/grafana/provisioning/dashboards/gpt-proxy.yml',
      '/etc/grafana/provisioning/datasources/gpt-proxy.yml',
      '/run/secrets/gf-security-admin-password',
    ],
  );
  const source = uploads(grafana).find((u) => u.file.endsWith('datasources/gpt-proxy.yml'))?.content ?? '';
  assert.match(source, /"url": "http:\/\/prometheus:9090"/);
  const env = envOf(grafana);
  assert.equal(env.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer');
  assert.equal(env.GF_ANALYTICS_CHECK_FOR_UPDATES, 'false');
  // Grafana's image reads GF_<X>__FILE into GF_<X>.
  assert.equal(env.GF_SECURITY_ADMIN_PASSWORD__FILE, '/run/secrets/gf-security-admin-password');
  const password = fileSecret(grafana, 'GF_SECURITY_ADMIN_PASSWORD', '__FILE');
  assert.ok(d.secretValues.includes(password), 'generated by @pulumi/random');
});
