// /admin/v1/upstream-keys against real Postgres and Redis: keys sealed on write and never
// returned, duplicates refused, enable/disable (sticky against the prober), delete, and the
// pool on this instance using the change at once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { insertSealedKey } from '../../app/src/upstream/key-rows.ts';
import {
  type AdminFixture,
  assertError,
  type Page,
  startAdminFixture,
  UPSTREAM_KEY,
  type UpstreamKeyItem,
} from './admin-fixture.ts';

const ADDED = 'sk-proj-admin-added-key-0123456789abcdef';

describe('admin API: upstream keys', () => {
  let f: AdminFixture;
  let user: string;
  let envKeyId: number;
  before(async () => {
    f = await startAdminFixture();
    user = (await f.stack.issueKey()).key;
    const env = await f.stack.db.query<{ id: number }>("SELECT id FROM upstream_keys WHERE source = 'env'");
    envKeyId = env.rows[0]?.id as number;
  });
  after(async () => {
    await f?.close();
  });

  const add = (body: Record<string, unknown>) => f.call<UpstreamKeyItem>('POST', '/upstream-keys', { body });
  const setStatus = (id: number, status: string) =>
    f.call<UpstreamKeyItem>('PATCH', `/upstream-keys/${id}`, { body: { status } });

  it('adds a key sealed with ENCRYPTION_KEY, marked admin, never echoed; the pool uses it at once', async () => {
    // The only key so far starts failing: the new one must carry the traffic.
    f.stack.fake.setKeyBehavior(UPSTREAM_KEY, 'invalid_key');
    const r = await add({ provider: 'openai', key: ADDED });
    assert.equal(r.status, 201, r.text);
    assert.ok(!r.text.includes(ADDED), 'the key is in the answer');
    assert.equal(r.body.provider, 'openai');
    assert.equal(r.body.source, 'admin');
    assert.equal(r.body.status, 'active');
    assert.equal(r.body.failure_count, 0);
    assert.match(r.body.fingerprint_suffix, /^[0-9a-f]{8}$/);

    const row = await f.stack.db.query(
      'SELECT key_ciphertext, key_iv, key_auth_tag, encryption_key_id, fingerprint, source FROM upstream_keys WHERE id = $1',
      [r.body.id],
    );
    const stored = row.rows[0];
    assert.ok(!JSON.stringify(row.rows).includes(ADDED));
    assert.ok(!Buffer.from(stored.key_ciphertext).includes(Buffer.from(ADDED)));
    const box = new SecretBox({ current: f.stack.encryptionKey });
    const opened = box.open({
      ciphertext: stored.key_ciphertext,
      iv: stored.key_iv,
      authTag: stored.key_auth_tag,
      keyId: stored.encryption_key_id,
    });
    assert.equal(opened, ADDED);
    assert.equal(stored.fingerprint.toString('hex').slice(-8), r.body.fingerprint_suffix);

    f.stack.fake.clearRequests();
    for (let i = 0; i < 3; i++) assert.equal((await f.chat(user)).status, 200);
    assert.ok(f.stack.fake.requests.some((req) => req.key === ADDED));
    f.stack.fake.clearKeyBehaviors();
    assert.ok(!f.app.logText().includes(ADDED), 'the key is in the log');
  });

  it('refuses a key already stored (admin or environment) with 400 param key', async () => {
    const dup = await add({ provider: 'openai', key: ADDED });
    assertError(dup, 400, 'invalid_request', 'key');
    assert.ok(!dup.text.includes(ADDED));
    assertError(await add({ provider: 'openai', key: UPSTREAM_KEY }), 400, 'invalid_request', 'key');
  });

  it('refuses to add a key while a row sealed with an unknown encryption key exists (it may be the same key)', async () => {
    // As after restoring a pre-rotation backup: a row sealed with a key the app was not given.
    const otherKey = 'cd'.repeat(32);
    const restored = 'sk-proj-restored-before-rotation-0000';
    const id = await insertSealedKey(f.stack.db, new SecretBox({ current: otherKey }), {
      provider: 'openai',
      key: restored,
      source: 'admin',
      endpoint: null,
      deployments: null,
    });
    try {
      const r = await add({ provider: 'openai', key: restored });
      assertError(r, 400, 'invalid_request');
      assert.match(r.body.error?.message ?? '', new RegExp(`upstream key ${id} .*ENCRYPTION_KEY_PREVIOUS`));
      for (const secret of [restored, otherKey, f.stack.encryptionKey]) assert.ok(!r.text.includes(secret));
      const count = await f.stack.db.query("SELECT 1 FROM upstream_keys WHERE provider = 'openai'");
      assert.equal(count.rowCount, 3, 'nothing was added');
    } finally {
      await f.stack.db.query('DELETE FROM upstream_keys WHERE id = $1', [id]);
    }
  });

  it('adds an Azure key with endpoint and deployments in either spelling', async () => {
    const r = await add({
      provider: 'azure',
      key: 'azure-key-0123456789abcdef0123456789ab',
      endpoint: 'https://example-resource.openai.azure.com/',
      deployments: [
        'gpt-4o',
        'gpt-4o-mini=my-mini',
        { deployment: 'emb', models: ['text-embedding-3-small'] },
      ],
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.endpoint, 'https://example-resource.openai.azure.com');
    assert.deepEqual(r.body.deployments, [
      { deployment: 'gpt-4o', models: ['gpt-4o'] },
      { deployment: 'my-mini', models: ['gpt-4o-mini'] },
      { deployment: 'emb', models: ['text-embedding-3-small'] },
    ]);
  });

  it('lists provider, fingerprint suffix, status, failures and a scrubbed last error — never the key', async () => {
    await f.stack.db.query(
      "UPDATE upstream_keys SET failure_count = 2, last_error = 'Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwxyz' WHERE id = $1",
      [envKeyId],
    );
    const list = await f.call<Page<UpstreamKeyItem>>('GET', '/upstream-keys');
    assert.equal(list.status, 200);
    assert.ok(list.body.data.length >= 3);
    for (const k of list.body.data) {
      assert.ok(!('key' in k) && !('key_ciphertext' in k) && !('fingerprint' in k));
      assert.match(k.fingerprint_suffix, /^[0-9a-f]{8}$/);
    }
    for (const secret of [ADDED, UPSTREAM_KEY, 'abcdefghijklmnopqrstuvwxyz']) {
      assert.ok(!list.text.includes(secret), `${secret} is in the list`);
    }
    const env = list.body.data.find((k) => k.id === envKeyId);
    assert.equal(env?.source, 'env');
    assert.equal(env?.failure_count, 2);
    assert.match(env?.last_error ?? '', /Incorrect API key provided: \[redacted\]/);
    const filtered = await f.call<Page<UpstreamKeyItem>>('GET', '/upstream-keys', {
      query: { status: 'retired' },
    });
    assert.deepEqual(filtered.body.data, []);
  });

  it('disables (sticky: never probed back) and enables (active, failures cleared)', async () => {
    const off = await setStatus(envKeyId, 'disabled');
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.status, 'disabled');
    assert.equal(off.body.disabled_by, 'admin');
    const probe = await f.stack.db.query(
      "SELECT next_probe_at = 'infinity' AS never FROM upstream_keys WHERE id = $1",
      [envKeyId],
    );
    assert.equal(probe.rows[0].never, true);

    const on = await setStatus(envKeyId, 'active');
    assert.equal(on.body.status, 'active');
    assert.equal(on.body.failure_count, 0);
    assert.equal(on.body.last_error, null);
    assert.equal(on.body.disabled_by, null);
  });

  it('a disabled key stops serving on this instance at once', async () => {
    const list = await f.call<Page<UpstreamKeyItem>>('GET', '/upstream-keys', {
      query: { status: 'active' },
    });
    const active = list.body.data;
    for (const k of active) assert.equal((await setStatus(k.id, 'disabled')).status, 200);
    assertError(await f.chat(user), 503, 'upstream_unavailable');
    for (const k of active) await setStatus(k.id, 'active');
    assert.equal((await f.chat(user)).status, 200);
  });

  it('deletes admin-added keys; environment keys are refused (they are retired through the environment)', async () => {
    const r = await add({ provider: 'openai', key: 'sk-proj-to-be-deleted-000000000000' });
    const del = await f.call<{ id: number; deleted: boolean }>('DELETE', `/upstream-keys/${r.body.id}`);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.body, { id: r.body.id, deleted: true });
    const gone = await f.stack.db.query('SELECT 1 FROM upstream_keys WHERE id = $1', [r.body.id]);
    assert.equal(gone.rowCount, 0);
    assertError(await f.call('DELETE', `/upstream-keys/${r.body.id}`), 404, 'unknown_url');
    assertError(await f.call('DELETE', `/upstream-keys/${envKeyId}`), 400, 'invalid_request', 'id');
  });

  it('refuses to change a retired key', async () => {
    await f.stack.db.query("UPDATE upstream_keys SET status = 'retired' WHERE id = $1", [envKeyId]);
    try {
      assertError(await setStatus(envKeyId, 'active'), 400, 'invalid_request', 'status');
    } finally {
      await f.stack.db.query("UPDATE upstream_keys SET status = 'active' WHERE id = $1", [envKeyId]);
    }
  });

  it('answers validation errors with 400 invalid_request naming the field', async () => {
    assertError(await add({ key: 'sk-proj-0000000000000' }), 400, 'invalid_request', 'provider');
    assertError(
      await add({ provider: 'anthropic', key: 'sk-proj-0000000000000' }),
      400,
      'invalid_request',
      'provider',
    );
    assertError(await add({ provider: 'openai' }), 400, 'invalid_request', 'key');
    assertError(await add({ provider: 'openai', key: 'short' }), 400, 'invalid_request', 'key');
    assertError(
      await add({ provider: 'openai', key: 'sk-proj with space 000' }),
      400,
      'invalid_request',
      'key',
    );
    assertError(
      await add({ provider: 'openai', key: 'sk-proj-0000000000000', endpoint: 'https://api.example.com' }),
      400,
      'invalid_request',
      'endpoint',
    );
    const azure = { provider: 'azure', key: 'azure-0000000000000000' };
    assertError(await add({ ...azure, deployments: ['gpt-4o'] }), 400, 'invalid_request', 'endpoint');
    assertError(
      await add({ ...azure, endpoint: 'https://r.openai.azure.com' }),
      400,
      'invalid_request',
      'deployments',
    );
    assertError(
      await add({ ...azure, endpoint: 'ftp://r.openai.azure.com', deployments: ['d'] }),
      400,
      'invalid_request',
      'endpoint',
    );
    // A NUL would be percent-encoded by the URL parser but stored as sent, where Postgres refuses it.
    assertError(
      await add({ ...azure, endpoint: 'https://r.openai.azure.com/a\u0000b', deployments: ['d'] }),
      400,
      'invalid_request',
      'endpoint',
    );
    assertError(
      await add({ ...azure, endpoint: 'https://user:pw@r.openai.azure.com', deployments: ['d'] }),
      400,
      'invalid_request',
      'endpoint',
    );
    assertError(
      await add({ ...azure, endpoint: 'https://r.openai.azure.com', deployments: ['a=b=c'] }),
      400,
      'invalid_request',
      'deployments.0',
    );
    assertError(
      await add({ ...azure, endpoint: 'https://r.openai.azure.com', deployments: [] }),
      400,
      'invalid_request',
      'deployments',
    );
    assertError(await setStatus(envKeyId, 'cooling'), 400, 'invalid_request', 'status');
    assertError(await setStatus(envKeyId, 'retired'), 400, 'invalid_request', 'status');
    assertError(await setStatus(99999, 'active'), 404, 'unknown_url');
    assertError(
      await f.call('GET', '/upstream-keys', { query: { status: 'broken' } }),
      400,
      'invalid_request',
      'status',
    );
  });
});
