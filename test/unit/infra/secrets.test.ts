import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../../app/src/config/index.ts';
import { containers } from './graph-invariants.ts';
import { type Deployment, deploy } from './harness.ts';
import {
  envOf,
  fileSecret,
  inputs,
  isSecretWrapper,
  materialized,
  plain,
  type Registration,
  rawUpload,
  uploadsOf,
} from './registrations.ts';

// Where each of the stack's secrets goes: every one set with `--secret` to a value of its own that
// nothing else contains, monitoring on (Grafana's generated admin password too). Each long-running
// container gets its secrets as files and only their paths in its environment; a changed secret
// changes the inputs of exactly the containers that use it, so Pulumi replaces them.

const PLANTED = {
  postgresPassword: 'pg-canary-Q1w2e3r4t5',
  redisPassword: 'redis-canary-A9s8d7f6g5',
  encryptionKey: 'e1'.repeat(32),
  encryptionKeyPrevious: 'f2'.repeat(32),
  openaiApiKeys: 'sk-openai-canary-one,sk-openai-canary-two',
  azureApiKeys: 'azure-canary-key-0123456789',
};
const MONITORING = { monitoring: 'true' };

const d = await deploy('dev', PLANTED, MONITORING);
const c = containers(d);
const grafana = c.monitoring.find((m) => m.name === 'monitoring-grafana') as Registration;
const grafanaPassword = fileSecret(grafana, 'GF_SECURITY_ADMIN_PASSWORD', '__FILE');

/** Every planted value, each upstream key on its own too, and Grafana's generated password. */
const everySecret = [
  ...Object.values(PLANTED),
  ...PLANTED.openaiApiKeys.split(','),
  ...PLANTED.azureApiKeys.split(','),
  grafanaPassword,
];

test('no container environment holds any of the secrets', () => {
  assert.ok(grafanaPassword.length >= 16);
  for (const r of c.all) {
    const env = JSON.stringify(plain(r.raw.envs ?? []));
    for (const secret of everySecret) assert.ok(!env.includes(secret), `${r.name}: envs hold a secret`);
  }
});

/** The secret files of `r`: path → content, each upload's content still a Pulumi secret. */
function secretFilesOf(r: Registration): Record<string, string> {
  const files: Record<string, string> = {};
  for (const upload of uploadsOf(r).filter((u) => u.file.startsWith('/run/secrets/'))) {
    assert.ok(isSecretWrapper(rawUpload(r, upload.file)?.content), `${r.name}: ${upload.file} secret`);
    files[upload.file] = upload.content ?? '';
  }
  return files;
}

test('each container gets exactly its secrets, as files its *_FILE variables name', () => {
  const pgpass = `postgres:5432:*:gpt_proxy:${PLANTED.postgresPassword}\n`;
  const expected: Array<[Registration, Record<string, string>, Record<string, string>]> = [
    [
      c.postgres,
      { POSTGRES_PASSWORD_FILE: '/run/secrets/postgres-password' },
      { '/run/secrets/postgres-password': `${PLANTED.postgresPassword}\n` },
    ],
    [
      c.redis,
      { REDIS_PASSWORD_FILE: '/run/secrets/redis-password' },
      { '/run/secrets/redis-password': `${PLANTED.redisPassword}\n` },
    ],
    [c.backup, { PGPASSFILE: '/run/secrets/pgpass' }, { '/run/secrets/pgpass': pgpass }],
    [
      grafana,
      { GF_SECURITY_ADMIN_PASSWORD__FILE: '/run/secrets/gf-security-admin-password' },
      { '/run/secrets/gf-security-admin-password': `${grafanaPassword}\n` },
    ],
    ...c.app.map((app): [Registration, Record<string, string>, Record<string, string>] => [
      app,
      {
        POSTGRES_PASSWORD_FILE: '/run/secrets/postgres-password',
        REDIS_PASSWORD_FILE: '/run/secrets/redis-password',
        ENCRYPTION_KEY_FILE: '/run/secrets/encryption-key',
        ENCRYPTION_KEY_PREVIOUS_FILE: '/run/secrets/encryption-key-previous',
      },
      {
        '/run/secrets/postgres-password': `${PLANTED.postgresPassword}\n`,
        '/run/secrets/redis-password': `${PLANTED.redisPassword}\n`,
        '/run/secrets/encryption-key': `${PLANTED.encryptionKey}\n`,
        '/run/secrets/encryption-key-previous': `${PLANTED.encryptionKeyPrevious}\n`,
      },
    ]),
  ];
  for (const [r, variables, files] of expected) {
    const env = envOf(r);
    const named = Object.fromEntries(Object.entries(env).filter(([, v]) => v.startsWith('/run/secrets/')));
    assert.deepEqual(named, variables, `${r.name}: the variables naming secret files`);
    assert.deepEqual(secretFilesOf(r), files, `${r.name}: the secret files`);
  }
  for (const r of [c.certd, c.nginx, ...c.monitoring.filter((m) => m !== grafana)]) {
    assert.deepEqual(secretFilesOf(r), {}, `${r.name} gets no secret`);
  }
});

test('an unset ENCRYPTION_KEY_PREVIOUS is a file the app reads as unset, not an empty upload', async () => {
  const unset = Object.fromEntries(Object.entries(PLANTED).filter(([k]) => k !== 'encryptionKeyPrevious'));
  const other = await deploy('dev', unset, MONITORING);
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-infra-files-'));
  try {
    for (const app of containers(other).app) {
      const previous = uploadsOf(app).find((u) => u.file === '/run/secrets/encryption-key-previous');
      assert.equal(previous?.content, '\n');
      const config = loadConfig(materialized(app, dir), ['encryption']);
      assert.deepEqual(config.encryption.previous, []);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The deployment with `changes` applied to the planted secrets. */
const redeploy = (changes: Partial<typeof PLANTED>): Promise<Deployment> =>
  deploy('dev', { ...PLANTED, ...changes }, MONITORING);

/** Logical names of the containers whose inputs differ; each differs in its uploads only. */
function changedContainers(a: Deployment, b: Deployment): string[] {
  const before = new Map(containers(a).all.map((r) => [r.urn, r]));
  const changed: string[] = [];
  for (const r of containers(b).all) {
    const old = before.get(r.urn);
    assert.ok(old, `${r.name} in both`);
    if (JSON.stringify(inputs(old)) === JSON.stringify(inputs(r))) continue;
    const { uploads: _a, ...restOld } = inputs(old);
    const { uploads: _b, ...restNew } = inputs(r);
    assert.deepEqual(restNew, restOld, `${r.name}: only its uploads change`);
    changed.push(r.name);
  }
  return changed.sort();
}

const replicas = c.app.map((r) => r.name);
for (const [key, value, users] of [
  ['postgresPassword', 'pg-canary-changed-1', ['backups-container', 'postgres-container', ...replicas]],
  ['redisPassword', 'redis-canary-changed-1', ['redis-container', ...replicas]],
  ['encryptionKey', 'a3'.repeat(32), replicas],
  ['encryptionKeyPrevious', 'b4'.repeat(32), replicas],
] as const) {
  test(`changing ${key} changes the inputs of the containers that use it, and only theirs`, async () => {
    const changed = await redeploy({ [key]: value });
    assert.deepEqual(changedContainers(d, changed), [...users].sort());
  });
}
