import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SECRET_VARIABLES } from '../../../app/src/config/env.ts';
import { loadConfig } from '../../../app/src/config/index.ts';
import { SECTIONS } from '../../../infra/env.ts';
import { digestFiles } from '../../../infra/files.ts';
import { SECRETS_DIR } from '../../../infra/secret-files.ts';
import { containers, type Expected } from './graph-invariants.ts';
import { ADMIN_KEY, type Deployment, EXPIRES_AT } from './harness.ts';
import {
  envOf,
  fileSecret,
  inputs,
  isSecretWrapper,
  materialized,
  one,
  plain,
  plainStrings,
  rawUpload,
  TYPES,
  uploadsOf,
} from './registrations.ts';
import { REPO } from './stack-files.ts';

/** Variables that would hand a container a secret as a value. */
const SECRET_NAMES: readonly string[] = [...SECRET_VARIABLES, 'PGPASSWORD', 'GF_SECURITY_ADMIN_PASSWORD'];

// What must hold for every stack, part 2: secrets stay secret (and out of every container's
// environment: files instead), every environment passes the app's own schema (the sections
// config.test.ts ties to what each program loads), the hooks run in order with the right
// triggers, the outputs are as the contract says.

export function describeFlow(d: Deployment, x: Expected): void {
  const prefix = `gpt-proxy-${x.stack}`;
  const c = containers(d);
  const command = (suffix: string) => one(d, TYPES.command, suffix);

  test('no secret value appears in any plain field; the fields carrying them are secret', () => {
    assert.ok(d.secretValues.length >= 3);
    for (const r of d.resources) {
      for (const { path, text } of plainStrings(r.raw)) {
        for (const secret of d.secretValues)
          assert.ok(!text.includes(secret), `${r.name}.${path} carries a secret`);
      }
    }
    for (const name of ['init-db', 'init-upstream-keys', 'create-admin']) {
      assert.ok(isSecretWrapper(command(name).raw.environment), name);
    }
    assert.equal(d.outputs.adminApiKey?.secret, true);
    assert.equal(d.outputs.adminApiKey?.value, ADMIN_KEY);
  });

  // `docker inspect` shows a container's whole configuration, whether Pulumi marked it secret or not.
  test("no container's environment, command or health check holds a secret, marked secret or not", () => {
    for (const r of c.all) {
      const { uploads: _, ...rest } = inputs(r);
      const text = JSON.stringify(rest);
      for (const secret of d.secretValues) assert.ok(!text.includes(secret), `${r.name} carries a secret`);
      for (const entry of (rest.envs ?? []) as string[]) {
        const name = entry.slice(0, entry.indexOf('='));
        assert.ok(!SECRET_NAMES.includes(name), `${r.name}: ${name} is given as a value`);
      }
    }
  });

  test('each secret file a variable names is a secret upload of that container, readable by its user', () => {
    let files = 0;
    for (const r of c.all) {
      const named = Object.entries(envOf(r)).filter(([, value]) => value.startsWith(`${SECRETS_DIR}/`));
      for (const [name, path] of named) {
        assert.match(name, /^(\w+?)(_FILE|__FILE)$|^PGPASSFILE$/, `${r.name}: ${name}`);
        const upload = rawUpload(r, path);
        assert.ok(upload, `${r.name}: ${name} names ${path}, which is uploaded`);
        assert.ok(isSecretWrapper(upload.content), `${r.name}: ${path} is a secret`);
        assert.equal(upload.executable, undefined);
        // libpq ignores a password file others may read; the backup container runs as root.
        const mode = name === 'PGPASSFILE' ? '0400' : '0444';
        assert.equal(upload.permissions, mode, `${r.name}: ${path}`);
        files += 1;
      }
      for (const upload of uploadsOf(r).filter((u) => u.file.startsWith(`${SECRETS_DIR}/`))) {
        assert.ok(
          named.some(([, path]) => path === upload.file),
          `${r.name}: ${upload.file} is named by a variable`,
        );
      }
    }
    // Postgres, Redis, the backup container, Grafana: one each; each replica: four.
    assert.equal(files, 3 + 4 * x.replicas + (x.monitoring ? 1 : 0));
  });

  test('each app container environment, with its files, passes the app config schema', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-infra-files-'));
    try {
      for (const app of c.app) {
        const env = materialized(app, dir);
        assert.doesNotThrow(() => loadConfig(env, SECTIONS.app));
        const cfg = loadConfig(env, SECTIONS.app);
        assert.equal(cfg.server.port, 8000);
        assert.equal(cfg.database.host, 'postgres');
        assert.equal(cfg.redis.host, 'redis');
        assert.match(cfg.encryption.current, /^[0-9a-f]{64}$/);
        // The files hold what the servers were given.
        assert.equal(cfg.database.password, fileSecret(c.postgres, 'POSTGRES_PASSWORD'));
        assert.equal(cfg.redis.password, fileSecret(c.redis, 'REDIS_PASSWORD'));
        assert.equal(env.OPENAI_API_KEYS, undefined, 'the proxy reads upstream keys from Postgres');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.doesNotThrow(() => loadConfig(envOf(c.certd), SECTIONS.certd));
    assert.equal(envOf(c.certd).ACME_DIRECTORY, x.acmeDirectory);
  });

  test('hooks run in order on the appliance network, with the right triggers; create-admin runs once', () => {
    const initDb = command('init-db');
    const keys = command('init-upstream-keys');
    const admin = command('create-admin');
    const issue = command('issue-cert');
    assert.ok(initDb.dependencies.includes(c.postgres.urn));
    assert.ok(initDb.dependencies.includes(one(d, TYPES.image, 'images-app').urn));
    assert.ok(keys.dependencies.includes(initDb.urn));
    assert.ok(admin.dependencies.includes(keys.urn));
    assert.ok(issue.dependencies.includes(c.nginx.urn) && issue.dependencies.includes(c.certd.urn));
    const migrations = digestFiles(`${REPO}app/src/db/migrations`);
    assert.deepEqual(inputs(initDb).triggers, [migrations, 'postgres-container-id']);
    assert.deepEqual(inputs(issue).triggers, ['nginx-container-id']);
    assert.deepEqual(admin.ignoreChanges.sort(), [
      'create',
      'environment',
      'interpreter',
      'logging',
      'triggers',
    ]);
    assert.deepEqual(admin.additionalSecretOutputs, ['stdout']);
    assert.equal(inputs(admin).logging, 'stderr', 'the key is not logged');
    for (const [hook, script, network] of [
      [initDb, 'init-db.js', 'data'],
      [keys, 'init-upstream-keys.js', 'data'],
      [admin, 'create-admin.js', 'data'],
      [issue, 'issue-cert.js', 'edge'],
    ] as const) {
      const i = inputs(hook);
      assert.match(
        String(i.create),
        new RegExp(`^exec docker run --rm .*"\\$GPT_PROXY_IMAGE" node dist/scripts/${script}`),
      );
      const env = i.environment as Record<string, string>;
      assert.equal(env.DOCKER_HOST, x.dockerHost);
      assert.equal(env.GPT_PROXY_NETWORK, `${prefix}-${network}`);
      assert.equal(env.GPT_PROXY_IMAGE, `gpt-proxy-app:${x.stack}`);
      for (const name of String(i.create).match(/--env (\w+)/g) ?? []) {
        assert.ok(name.slice(6) in env, `${script}: ${name} is defined`);
      }
    }
    assert.match(String(inputs(admin).create), /--username admin --email \S+ --json/);
  });

  test('the hooks environments pass the schema sections their scripts load', () => {
    const env = (name: string) => plain(command(name).raw.environment) as Record<string, string>;
    assert.doesNotThrow(() => loadConfig(env('init-db'), SECTIONS.initDb));
    assert.doesNotThrow(() => loadConfig(env('init-upstream-keys'), SECTIONS.initUpstreamKeys));
    assert.doesNotThrow(() => loadConfig(env('create-admin'), SECTIONS.createAdmin));
    assert.doesNotThrow(() => loadConfig(env('issue-cert'), SECTIONS.issueCert));
  });

  test('outputs: endpoint, healthUrl, adminApiKey (secret), certificateExpiresAt (ISO 8601)', () => {
    assert.deepEqual(Object.keys(d.outputs).sort(), [
      'adminApiKey',
      'certificateExpiresAt',
      'endpoint',
      'healthUrl',
    ]);
    assert.deepEqual(d.outputs.endpoint, { value: x.endpoint, secret: false });
    assert.deepEqual(d.outputs.healthUrl, { value: `${x.endpoint}/health`, secret: false });
    assert.equal(d.outputs.certificateExpiresAt?.value, EXPIRES_AT);
    const [read] = d.calls;
    assert.ok(read);
    assert.equal(read.token, 'command:local:run');
    assert.match(
      String(read.inputs.command),
      /--network "\$GPT_PROXY_NETWORK" --volume "\$GPT_PROXY_VOLUME_0:\/etc\/gpt-proxy\/certs:ro"/,
    );
    assert.equal((read.inputs.environment as Record<string, string>).GPT_PROXY_NETWORK, 'none');
  });
}
