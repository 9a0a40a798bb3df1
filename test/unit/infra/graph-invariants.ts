import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shutdownBoundMs } from '../../../app/src/shutdown-budget.ts';
import type { Deployment } from './harness.ts';
import { inputs, ofType, one, type Registration, TYPES } from './registrations.ts';
import { REPO } from './stack-files.ts';

// What must hold for every stack, part 1: the resource graph - what exists, which image each
// container runs, what is published where, how networks and volumes are wired, how replicas roll.

export interface Expected {
  stack: string;
  dockerHost: string;
  replicas: number;
  bindAddress: string;
  httpPort: number;
  httpsPort: number;
  acmeDirectory: string;
  endpoint: string;
  /** `monitoring: true`: Prometheus, Grafana and the nginx exporter exist. */
  monitoring: boolean;
}

export function containers(d: Deployment) {
  const all = ofType(d, TYPES.container);
  const named = (suffix: string) => one(d, TYPES.container, suffix);
  return {
    all,
    postgres: named('postgres-container'),
    redis: named('redis-container'),
    certd: named('certd-container'),
    nginx: named('nginx-container'),
    backup: named('backups-container'),
    app: all.filter((c) => /-app-\d+$/.test(c.name)).sort((a, b) => a.name.localeCompare(b.name)),
    /** Prometheus, Grafana and the nginx exporter; none without `monitoring: true`. */
    monitoring: all.filter((c) => c.name.startsWith('monitoring-')),
  };
}

function networksOf(c: Registration): { name: string; aliases?: string[] }[] {
  return (inputs(c).networksAdvanced ?? []) as { name: string; aliases?: string[] }[];
}

function volumesOf(c: Registration): { volumeName: string; containerPath: string; readOnly?: boolean }[] {
  return (inputs(c).volumes ?? []) as { volumeName: string; containerPath: string; readOnly?: boolean }[];
}

export function describeGraph(d: Deployment, x: Expected): void {
  const prefix = `gpt-proxy-${x.stack}`;
  const c = containers(d);
  const command = (suffix: string) => one(d, TYPES.command, suffix);

  test('one docker provider, for the configured host; every Docker resource uses it', () => {
    const providers = ofType(d, TYPES.provider);
    assert.equal(providers.length, 1);
    const provider = providers[0] as Registration;
    assert.equal(inputs(provider).host, x.dockerHost);
    const dockerResources = d.resources.filter((r) => r.type.startsWith('docker:'));
    assert.ok(dockerResources.length > 10);
    for (const r of dockerResources) assert.ok(r.provider.startsWith(`${provider.urn}::`), r.name);
  });

  test('networks: edge (with a route out), data and metrics (internal); the named volumes', () => {
    const nets = ofType(d, TYPES.network).map(inputs);
    assert.deepEqual(nets.map((n) => [n.name, n.internal ?? false]).sort(), [
      [`${prefix}-data`, true],
      [`${prefix}-edge`, false],
      [`${prefix}-metrics`, true],
    ]);
    const monitoringVolumes = x.monitoring ? [`${prefix}-grafana`, `${prefix}-prometheus`] : [];
    assert.deepEqual(
      ofType(d, TYPES.volume)
        .map((v) => inputs(v).name)
        .sort(),
      [
        `${prefix}-acme`,
        `${prefix}-backups`,
        `${prefix}-certs`,
        `${prefix}-pgdata`,
        `${prefix}-redisdata`,
        ...monitoringVolumes,
      ].sort(),
    );
  });

  test('images: postgres, redis and nginx pulled by pinned tag; the app built from the repo Dockerfile', () => {
    const tags = ofType(d, TYPES.remoteImage).map((r) => String(inputs(r).name));
    assert.equal(tags.length, x.monitoring ? 6 : 3);
    for (const tag of tags) {
      assert.match(
        tag,
        /^(postgres|redis|nginx|prom\/prometheus|grafana\/grafana|nginx\/nginx-prometheus-exporter):v?\d[\w.-]*$/,
        'pinned, not latest',
      );
    }
    const app = inputs(one(d, TYPES.image, 'images-app'));
    const build = app.build as { context: string; dockerfile: string; args: Record<string, string> };
    assert.equal(build.context, REPO);
    assert.equal(build.dockerfile, `${REPO}Dockerfile`);
    assert.match(build.args.NODE_BASE ?? '', /^node:24/);
    assert.equal(app.skipPush, true, 'no registry');
    assert.equal(app.registry, undefined);
    assert.equal(app.imageName, `gpt-proxy-app:${x.stack}`);
  });

  test('each container runs the intended image', () => {
    const image = (r: Registration) => inputs(r).image;
    assert.match(String(image(c.postgres)), /^mock-image-id:postgres:/);
    assert.match(String(image(c.redis)), /^mock-image-id:redis:/);
    assert.match(String(image(c.nginx)), /^mock-image-id:nginx:/);
    assert.equal(image(c.backup), image(c.postgres), 'pg_dump of the server major version');
    const built = `mock-build:gpt-proxy-app:${x.stack}`;
    assert.equal(image(c.certd), built);
    for (const app of c.app) assert.equal(image(app), built);
    assert.deepEqual(inputs(c.certd).command, ['node', 'dist/scripts/certd.js']);
    for (const app of c.app)
      assert.deepEqual(inputs(app).command, [
        'node',
        '--max-semi-space-size=16',
        '--heap-growing-percent=100',
        'dist/app/src/main.js',
      ]);
    assert.equal(c.all.length, 5 + x.replicas + (x.monitoring ? 3 : 0));
    assert.equal(c.monitoring.length, x.monitoring ? 3 : 0, 'monitoring containers only when enabled');
  });

  test('only nginx publishes ports: httpPort and httpsPort on bindAddress', () => {
    for (const r of c.all) if (r !== c.nginx) assert.equal(inputs(r).ports, undefined, r.name);
    assert.deepEqual(inputs(c.nginx).ports, [
      { internal: 80, external: x.httpPort, ip: x.bindAddress, protocol: 'tcp' },
      { internal: 443, external: x.httpsPort, ip: x.bindAddress, protocol: 'tcp' },
    ]);
  });

  test('networks and volumes are wired as intended', () => {
    const edge = `${prefix}-edge`;
    const data = `${prefix}-data`;
    const metrics = `${prefix}-metrics`;
    assert.deepEqual(networksOf(c.postgres), [{ name: data, aliases: ['postgres'] }]);
    assert.deepEqual(networksOf(c.redis), [{ name: data, aliases: ['redis'] }]);
    assert.deepEqual(networksOf(c.backup), [{ name: data }]);
    assert.deepEqual(networksOf(c.certd), [{ name: edge }, { name: metrics, aliases: ['certd'] }]);
    assert.deepEqual(networksOf(c.nginx), [
      { name: edge, aliases: [new URL(x.endpoint).hostname] },
      { name: metrics, aliases: ['nginx'] },
    ]);
    for (const app of c.app) {
      assert.deepEqual(networksOf(app), [
        { name: edge, aliases: ['app'] },
        { name: data },
        { name: metrics, aliases: ['app-metrics'] },
      ]);
    }
    for (const m of c.monitoring)
      assert.deepEqual(
        networksOf(m).map((n) => n.name),
        [metrics],
        m.name,
      );
    assert.deepEqual(volumesOf(c.backup), [{ volumeName: `${prefix}-backups`, containerPath: '/backups' }]);
    assert.deepEqual(volumesOf(c.postgres), [
      { volumeName: `${prefix}-pgdata`, containerPath: '/var/lib/postgresql/data' },
    ]);
    assert.deepEqual(volumesOf(c.redis), [{ volumeName: `${prefix}-redisdata`, containerPath: '/data' }]);
    assert.deepEqual(volumesOf(c.certd), [
      { volumeName: `${prefix}-certs`, containerPath: '/etc/gpt-proxy/certs' },
      { volumeName: `${prefix}-acme`, containerPath: '/var/www/acme' },
    ]);
    assert.deepEqual(volumesOf(c.nginx), [
      { volumeName: `${prefix}-certs`, containerPath: '/etc/gpt-proxy/certs', readOnly: true },
      { volumeName: `${prefix}-acme`, containerPath: '/var/www/acme', readOnly: true },
    ]);
    for (const app of c.app) assert.equal(inputs(app).volumes, undefined);
  });

  test('every container: restart policy, rotated json-file logs, a health check waited on', () => {
    for (const r of c.all) {
      const i = inputs(r);
      assert.equal(i.restart, 'unless-stopped', r.name);
      assert.equal(i.logDriver, 'json-file', r.name);
      assert.deepEqual(i.logOpts, { 'max-size': '10m', 'max-file': '5' }, r.name);
      // The exporter's image is FROM scratch (no shell); Prometheus watches it (up{job="nginx"}).
      if (r.name === 'monitoring-nginx-exporter') continue;
      assert.equal(i.wait, true, r.name);
      assert.ok(((i.healthcheck as { tests: string[] }).tests ?? []).length > 1, r.name);
    }
    for (const app of c.app) {
      const tests = (inputs(app).healthcheck as { tests: string[] }).tests.join(' ');
      assert.match(tests, /http:\/\/127\.0\.0\.1:8000\/health\/live/);
      assert.equal(inputs(app).user, 'node');
    }
    assert.equal(inputs(c.certd).user, 'node');
    assert.equal(inputs(c.postgres).user, 'postgres');
    assert.equal(inputs(c.redis).user, 'redis');
    assert.equal(inputs(c.backup).user, '0:0');
    assert.deepEqual(inputs(c.backup).capabilities, { drops: ['ALL'] }, 'root without any capability');
  });

  test('app replicas: Docker waits out the whole shutdown before SIGKILL, on stop and on destroy', () => {
    // The grace, the cut requests' bookkeeping, the final writes and the exit, with room for the
    // signal to reach Node through tini: a SIGKILL inside it loses the buffered usage rows.
    const needed = shutdownBoundMs() + 2_000;
    for (const app of c.app) {
      const { stopTimeout, destroyGraceSeconds } = inputs(app);
      assert.ok(Number(stopTimeout) * 1000 >= needed, `stopTimeout ${stopTimeout} s < ${needed} ms`);
      assert.equal(destroyGraceSeconds, stopTimeout, app.name);
    }
  });

  test('replicas roll one at a time; stateful services and nginx are replaced delete-first', () => {
    assert.equal(c.app.length, x.replicas);
    c.app.forEach((replica, i) => {
      assert.equal(replica.name, `${prefix}-app-${i + 1}`);
      assert.equal(replica.deleteBeforeReplace, false, 'created before the old one is deleted');
      assert.equal(inputs(replica).name, undefined, 'generated names, so old and new coexist');
      const before = c.app[i - 1];
      if (before)
        assert.ok(replica.dependencies.includes(before.urn), `${replica.name} waits for ${before.name}`);
      assert.ok(replica.dependencies.includes(command('init-db').urn), 'migrations first');
    });
    for (const r of [c.postgres, c.redis, c.certd, c.nginx, c.backup, ...c.monitoring]) {
      assert.equal(r.deleteBeforeReplace, true, r.name);
      assert.match(String(inputs(r).name), new RegExp(`^${prefix}-`));
    }
  });
}
