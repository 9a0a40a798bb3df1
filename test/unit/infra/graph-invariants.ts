import assert from 'node:assert/strict';
import { test } from 'node:test';
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
    app: all.filter((c) => /-app-\d+$/.test(c.name)).sort((a, b) => a.name.localeCompare(b.name)),
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

  test('networks: edge (with a route out) and data (internal); four named volumes', () => {
    const nets = ofType(d, TYPES.network).map(inputs);
    assert.deepEqual(nets.map((n) => [n.name, n.internal ?? false]).sort(), [
      [`${prefix}-data`, true],
      [`${prefix}-edge`, false],
    ]);
    assert.deepEqual(
      ofType(d, TYPES.volume)
        .map((v) => inputs(v).name)
        .sort(),
      [`${prefix}-acme`, `${prefix}-certs`, `${prefix}-pgdata`, `${prefix}-redisdata`],
    );
  });

  test('images: postgres, redis and nginx pulled by pinned tag; the app built from the repo Dockerfile', () => {
    const tags = ofType(d, TYPES.remoteImage).map((r) => String(inputs(r).name));
    assert.equal(tags.length, 3);
    for (const tag of tags) assert.match(tag, /^(postgres|redis|nginx):\d[\w.-]*$/, 'pinned, not latest');
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
    const built = `mock-build:gpt-proxy-app:${x.stack}`;
    assert.equal(image(c.certd), built);
    for (const app of c.app) assert.equal(image(app), built);
    assert.deepEqual(inputs(c.certd).command, ['node', 'dist/scripts/certd.js']);
    for (const app of c.app) assert.deepEqual(inputs(app).command, ['node', 'dist/app/src/main.js']);
    assert.equal(c.all.length, 4 + x.replicas);
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
    assert.deepEqual(networksOf(c.postgres), [{ name: data, aliases: ['postgres'] }]);
    assert.deepEqual(networksOf(c.redis), [{ name: data, aliases: ['redis'] }]);
    assert.deepEqual(networksOf(c.certd), [{ name: edge }]);
    assert.deepEqual(networksOf(c.nginx), [{ name: edge }]);
    for (const app of c.app)
      assert.deepEqual(networksOf(app), [{ name: edge, aliases: ['app'] }, { name: data }]);
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
    for (const r of [c.postgres, c.redis, c.certd, c.nginx]) {
      assert.equal(r.deleteBeforeReplace, true, r.name);
      assert.match(String(inputs(r).name), new RegExp(`^${prefix}-`));
    }
  });
}
