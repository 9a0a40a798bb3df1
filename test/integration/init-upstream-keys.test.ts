import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { runScript, type ScriptResult } from '../helpers/scripts.ts';

const hex = () => randomBytes(32).toString('hex');
const upstreamKey = (n: number) => `sk-upstream-canary-${n}-${randomBytes(6).toString('hex')}`;

describe('init-upstream-keys', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.destroy();
  });

  /** A fresh, migrated database and a runner bound to it. */
  async function setup(encryptionKey = hex()) {
    const { name } = await pg.createDatabase();
    const base = { ...(pg.env(name) as unknown as Record<string, string>), ENCRYPTION_KEY: encryptionKey };
    const migrated = await runScript('init-db', [], base);
    assert.equal(migrated.code, 0, migrated.stderr);
    const sync = async (env: Record<string, string>, args: string[] = []): Promise<ScriptResult> => {
      const r = await runScript('init-upstream-keys', args, { ...base, ...env });
      for (const v of Object.values(env)) {
        if (/canary/.test(v)) {
          for (const k of v.split(',')) assert.ok(!(r.stdout + r.stderr).includes(k), 'a key was printed');
        }
      }
      return r;
    };
    const rows = async () => {
      const client = await pg.connect(name);
      try {
        const { rows } = await client.query(
          'SELECT id, provider, source, status, failure_count, endpoint, deployments, encryption_key_id FROM upstream_keys ORDER BY id',
        );
        return rows;
      } finally {
        await client.end();
      }
    };
    const sql = async (text: string, params: unknown[] = []) => {
      const client = await pg.connect(name);
      try {
        return (await client.query(text, params)).rows;
      } finally {
        await client.end();
      }
    };
    return { name, base, sync, rows, sql };
  }

  it('adds, keeps, retires and reactivates env keys, printing one summary line', async () => {
    const db = await setup();
    const [k1, k2, k3] = [upstreamKey(1), upstreamKey(2), upstreamKey(3)];

    let r = await db.sync({ OPENAI_API_KEYS: `${k1},${k2},${k1}` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'added=2 reactivated=0 retired=0 unchanged=0\n');

    r = await db.sync({ OPENAI_API_KEYS: `${k1},${k2}` });
    assert.equal(r.stdout, 'added=0 reactivated=0 retired=0 unchanged=2\n');

    r = await db.sync({ OPENAI_API_KEYS: `${k2},${k3}` });
    assert.equal(r.stdout, 'added=1 reactivated=0 retired=1 unchanged=1\n');
    assert.deepEqual(
      (await db.rows()).map((x) => [x.source, x.status]),
      [
        ['env', 'retired'],
        ['env', 'active'],
        ['env', 'active'],
      ],
    );

    r = await db.sync({ OPENAI_API_KEYS: `${k1},${k2},${k3}` }, ['--json']);
    assert.deepEqual(JSON.parse(r.stdout), { added: 0, reactivated: 1, retired: 0, unchanged: 2 });
    assert.ok((await db.rows()).every((x) => x.status === 'active'));
  });

  it('leaves the status of listed keys alone', async () => {
    const db = await setup();
    const [k1, k2] = [upstreamKey(1), upstreamKey(2)];
    await db.sync({ OPENAI_API_KEYS: `${k1},${k2}` });
    await db.sql(
      "UPDATE upstream_keys SET status = 'disabled', failure_count = 3, last_error = 'invalid_api_key' WHERE id = 1",
    );
    await db.sql(
      "UPDATE upstream_keys SET status = 'cooling', cooldown_until = now() + interval '1 minute' WHERE id = 2",
    );
    const r = await db.sync({ OPENAI_API_KEYS: `${k1},${k2}` });
    assert.equal(r.stdout, 'added=0 reactivated=0 retired=0 unchanged=2\n');
    assert.deepEqual(
      (await db.rows()).map((x) => [x.status, x.failure_count]),
      [
        ['disabled', 3],
        ['cooling', 0],
      ],
    );
  });

  it('never touches keys added through the admin API', async () => {
    const key = hex();
    const db = await setup(key);
    const adminKey = upstreamKey(9);
    const box = new SecretBox({ current: key });
    const sealed = box.seal(adminKey);
    await db.sql(
      `INSERT INTO upstream_keys (provider, key_ciphertext, key_iv, key_auth_tag, encryption_key_id, fingerprint, source, status)
       VALUES ('openai', $1, $2, $3, $4, $5, 'admin', 'disabled')`,
      [sealed.ciphertext, sealed.iv, sealed.authTag, sealed.keyId, box.fingerprint(adminKey)],
    );
    const envKey = upstreamKey(1);
    let r = await db.sync({ OPENAI_API_KEYS: envKey });
    assert.equal(r.stdout, 'added=1 reactivated=0 retired=0 unchanged=0\n');
    // Listing the admin key in the environment neither duplicates nor adopts it.
    r = await db.sync({ OPENAI_API_KEYS: `${envKey},${adminKey}` });
    assert.equal(r.stdout, 'added=0 reactivated=0 retired=0 unchanged=2\n');
    r = await db.sync({ OPENAI_API_KEYS: upstreamKey(2) });
    assert.equal(r.stdout, 'added=1 reactivated=0 retired=1 unchanged=0\n');
    const rows = await db.rows();
    assert.deepEqual(
      rows.map((x) => [x.source, x.status]),
      [
        ['admin', 'disabled'],
        ['env', 'retired'],
        ['env', 'active'],
      ],
    );
  });

  it('changes nothing and warns when the list is empty', async () => {
    const db = await setup();
    await db.sync({ OPENAI_API_KEYS: upstreamKey(1) });
    const before = await db.rows();
    const r = await db.sync({});
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'added=0 reactivated=0 retired=0 unchanged=0\n');
    assert.match(r.stderr, /warning: OPENAI_API_KEYS is empty \(UPSTREAM_TYPE=openai\); nothing changed/);
    assert.deepEqual(await db.rows(), before);
  });

  it('stores Azure keys with their endpoint and deployments', async () => {
    const db = await setup();
    const r = await db.sync({
      UPSTREAM_TYPE: 'azure',
      AZURE_API_KEYS: `${upstreamKey(1)},${upstreamKey(2)}`,
      AZURE_ENDPOINT: 'https://res.openai.azure.com',
      AZURE_DEPLOYMENT_NAMES: 'gpt-35-turbo,gpt-4o=prod-4o',
    });
    assert.equal(r.stdout, 'added=2 reactivated=0 retired=0 unchanged=0\n');
    const rows = await db.rows();
    assert.equal(rows[0].provider, 'azure');
    assert.equal(rows[0].endpoint, 'https://res.openai.azure.com');
    assert.deepEqual(rows[0].deployments, [
      { deployment: 'gpt-35-turbo', models: ['gpt-35-turbo', 'gpt-3.5-turbo'] },
      { deployment: 'prod-4o', models: ['gpt-4o'] },
    ]);
  });

  it('after a key rotation, matches old rows through ENCRYPTION_KEY_PREVIOUS and refuses without it', async () => {
    const oldKey = hex();
    const db = await setup(oldKey);
    const k1 = upstreamKey(1);
    await db.sync({ OPENAI_API_KEYS: k1 });
    const newKey = hex();

    const refused = await db.sync({ OPENAI_API_KEYS: k1, ENCRYPTION_KEY: newKey });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sealed with encryption key id [0-9a-f]{16}.*ENCRYPTION_KEY_PREVIOUS/);
    assert.ok(!refused.stderr.includes(oldKey) && !refused.stderr.includes(newKey));

    const r = await db.sync({ OPENAI_API_KEYS: k1, ENCRYPTION_KEY: newKey, ENCRYPTION_KEY_PREVIOUS: oldKey });
    assert.equal(r.stdout, 'added=0 reactivated=0 retired=0 unchanged=1\n');
    const [row] = await db.sql(
      'SELECT key_ciphertext, key_iv, key_auth_tag, encryption_key_id FROM upstream_keys',
    );
    const sealed = {
      ciphertext: row.key_ciphertext,
      iv: row.key_iv,
      authTag: row.key_auth_tag,
      keyId: row.encryption_key_id,
    };
    assert.equal(new SecretBox({ current: newKey, previous: [oldKey] }).open(sealed), k1);
    assert.throws(() => new SecretBox({ current: newKey }).open(sealed), /ENCRYPTION_KEY_PREVIOUS/);
  });
});
