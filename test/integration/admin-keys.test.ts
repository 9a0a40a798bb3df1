// /admin/v1/keys against real Postgres and Redis: issue (shown once, stored as a hash), list,
// limit changes and revocation — at once on this instance, within 5 s on another replica.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashApiKey } from '../../app/src/crypto/api-keys.ts';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';
import {
  type AdminFixture,
  type ApiKeyItem,
  assertError,
  type Page,
  startAdminFixture,
} from './admin-fixture.ts';

describe('admin API: keys', () => {
  let f: AdminFixture;
  let replica: InProcessApp;
  let member: { id: number; userId: number };
  before(async () => {
    f = await startAdminFixture();
    // A second instance on the same database: its own auth cache, nobody invalidates it.
    replica = await startAppInProcess(f.stack.env);
    member = await f.stack.issueKey({ username: 'member' });
  });
  after(async () => {
    await replica?.stop();
    await f?.close();
  });

  const issue = (body: Record<string, unknown>) => f.call<ApiKeyItem>('POST', '/keys', { body });

  it('issues a key once: 201 with the key, stored only as its hash, never listed or logged', async () => {
    const expires = new Date(Date.now() + 86_400_000).toISOString();
    const r = await issue({
      user_id: member.userId,
      name: 'ci-bot',
      rpm: 120,
      tpm: 0,
      expires_at: expires,
      models: ['gpt-4o*'],
    });
    assert.equal(r.status, 201, r.text);
    const key = r.body.key as string;
    assert.match(key, /^sk-gp-[A-Za-z0-9_-]{43}$/);
    assert.equal(r.body.name, 'ci-bot');
    assert.equal(r.body.user_id, member.userId);
    assert.equal(r.body.username, 'member');
    assert.equal(r.body.status, 'active');
    assert.equal(r.body.rpm, 120);
    assert.equal(r.body.tpm, 0);
    assert.deepEqual(r.body.models, ['gpt-4o*']);
    assert.equal(new Date(r.body.expires_at as string).toISOString(), expires);
    assert.equal(r.body.prefix, `${key.slice(0, 14)}…`);

    const row = await f.stack.db.query('SELECT key_hash FROM api_keys WHERE id = $1', [r.body.id]);
    assert.deepEqual(row.rows[0].key_hash, hashApiKey(key));
    const list = await f.call<Page<ApiKeyItem>>('GET', '/keys', { query: { limit: 100 } });
    assert.ok(list.body.data.some((k) => k.id === r.body.id));
    assert.ok(!list.text.includes(key.slice(14)), 'the key shows up in the list');
    assert.ok(list.body.data.every((k) => !('key' in k) && !('key_hash' in k)));

    assert.equal((await f.chat(key, 'gpt-4o-mini')).status, 200);
    assert.ok(!f.app.logText().includes(key.slice(14)), 'the key is in the log');
  });

  it('defaults: no limits (null), every model, no expiry, empty name', async () => {
    const r = await issue({ user_id: member.userId });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.name, '');
    assert.equal(r.body.rpm, null);
    assert.equal(r.body.tpm, null);
    assert.equal(r.body.models, null);
    assert.equal(r.body.expires_at, null);
  });

  it('lists with filters and pages', async () => {
    const mine = await f.call<Page<ApiKeyItem>>('GET', '/keys', { query: { user_id: member.userId } });
    assert.ok(mine.body.data.length >= 2);
    assert.ok(mine.body.data.every((k) => k.user_id === member.userId));
    const first = await f.call<Page<ApiKeyItem>>('GET', '/keys', { query: { limit: 1 } });
    assert.equal(first.body.data.length, 1);
    assert.equal(first.body.has_more, true);
    const next = await f.call<Page<ApiKeyItem>>('GET', '/keys', {
      query: { limit: 1, after: first.body.data[0]?.id as number },
    });
    assert.ok((next.body.data[0]?.id as number) > (first.body.data[0]?.id as number));
    const revoked = await f.call<Page<ApiKeyItem>>('GET', '/keys', { query: { status: 'revoked' } });
    assert.ok(revoked.body.data.every((k) => k.status === 'revoked'));
  });

  it('changes limits and models; the change reaches the other replica within 5 s', async () => {
    const r = await issue({ user_id: member.userId, name: 'limits' });
    const key = r.body.key as string;
    // Both instances have the key cached as allowing every model.
    assert.equal((await f.chat(key, 'gpt-4o-mini')).status, 200);
    assert.equal((await f.chat(key, 'gpt-4o-mini', replica.url)).status, 200);

    const patched = await f.call<ApiKeyItem>('PATCH', `/keys/${r.body.id}`, {
      body: { models: ['gpt-4o'], rpm: 30 },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.models, ['gpt-4o']);
    assert.equal(patched.body.rpm, 30);
    assert.equal(patched.body.name, 'limits', 'fields not named stay as they were');
    assertError(await f.chat(key, 'gpt-4o-mini'), 404, 'model_not_found');
    const started = Date.now();
    await waitFor(async () => (await f.chat(key, 'gpt-4o-mini', replica.url)).status === 404, {
      timeoutMs: 5_000,
      intervalMs: 100,
      what: 'the replica to apply the model change',
    });
    assert.ok(Date.now() - started < 5_000);

    const reset = await f.call<ApiKeyItem>('PATCH', `/keys/${r.body.id}`, {
      body: { rpm: null, models: null },
    });
    assert.equal(reset.body.rpm, null);
    assert.equal(reset.body.models, null);
  });

  it('revokes: refused at once here, within 5 s on the replica; idempotent', async () => {
    const r = await issue({ user_id: member.userId, name: 'to-revoke' });
    const key = r.body.key as string;
    assert.equal((await f.chat(key)).status, 200);
    assert.equal((await f.chat(key, undefined, replica.url)).status, 200);

    const revoked = await f.call<ApiKeyItem>('DELETE', `/keys/${r.body.id}`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.status, 'revoked');
    assert.ok(revoked.body.revoked_at);
    assertError(await f.chat(key), 401, 'invalid_api_key');
    const started = Date.now();
    await waitFor(async () => (await f.chat(key, undefined, replica.url)).status === 401, {
      timeoutMs: 5_000,
      intervalMs: 100,
      what: 'the replica to refuse the revoked key',
    });
    assert.ok(Date.now() - started < 5_000);

    const again = await f.call<ApiKeyItem>('DELETE', `/keys/${r.body.id}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.revoked_at, revoked.body.revoked_at);
  });

  it('refuses to revoke the key making the request, or to give it an expiry (a delayed revocation)', async () => {
    assertError(await f.call('DELETE', `/keys/${f.admin.id}`), 400, 'invalid_request', 'id');
    const soon = new Date(Date.now() + 60_000).toISOString();
    const expiry = await f.call('PATCH', `/keys/${f.admin.id}`, { body: { expires_at: soon } });
    assertError(expiry, 400, 'invalid_request', 'expires_at');
    assert.match(expiry.body.error?.message ?? '', /key you are using/);
    const row = await f.stack.db.query('SELECT expires_at FROM api_keys WHERE id = $1', [f.admin.id]);
    assert.equal(row.rows[0].expires_at, null);
    // Clearing an expiry, or changing anything else, locks nobody out.
    const named = await f.call('PATCH', `/keys/${f.admin.id}`, { body: { name: 'root', expires_at: null } });
    assert.equal(named.status, 200, named.text);
    assert.equal((await f.call('GET', '/keys')).status, 200);
  });

  it('answers validation errors with 400 invalid_request naming the field', async () => {
    const bad = async (body: Record<string, unknown>, param: string) =>
      assertError(await issue({ user_id: member.userId, ...body }), 400, 'invalid_request', param);
    assertError(await issue({}), 400, 'invalid_request', 'user_id');
    assertError(await issue({ user_id: '1' }), 400, 'invalid_request', 'user_id');
    assertError(await issue({ user_id: 99999 }), 400, 'invalid_request', 'user_id');
    // Past the int column's range: refused here, not left to Postgres (which would make it a 500).
    assertError(await issue({ user_id: 2 ** 31 }), 400, 'invalid_request', 'user_id');
    assertError(await issue({ user_id: Number.MAX_SAFE_INTEGER }), 400, 'invalid_request', 'user_id');
    await bad({ rpm: -1 }, 'rpm');
    await bad({ rpm: 1.5 }, 'rpm');
    await bad({ tpm: '100' }, 'tpm');
    await bad({ tpm: 2 ** 31 }, 'tpm');
    await bad({ expires_at: '2001-01-01T00:00:00Z' }, 'expires_at');
    await bad({ expires_at: 'tomorrow' }, 'expires_at');
    await bad({ models: [] }, 'models');
    await bad({ models: 'gpt-4o' }, 'models');
    await bad({ models: ['gpt 4o'] }, 'models.0');
    await bad({ name: 'x'.repeat(101) }, 'name');
    await bad({ name: 'line\nbreak' }, 'name');
    await bad({ limits: { rpm: 1 } }, 'limits');

    const disabled = await f.stack.issueKey({ username: 'frozen' });
    await f.stack.db.query('UPDATE users SET disabled = true WHERE id = $1', [disabled.userId]);
    const frozen = await issue({ user_id: disabled.userId });
    assertError(frozen, 400, 'invalid_request', 'user_id');
    assert.match(frozen.body.error?.message ?? '', /disabled/);

    assertError(await f.call('PATCH', `/keys/${member.id}`, { body: {} }), 400, 'invalid_request');
    assertError(
      await f.call('PATCH', `/keys/${member.id}`, { body: { status: 'active' } }),
      400,
      'invalid_request',
      'status',
    );
    assertError(await f.call('PATCH', '/keys/99999', { body: { rpm: 1 } }), 404, 'unknown_url');
    assertError(await f.call('DELETE', '/keys/99999'), 404, 'unknown_url');
    assertError(await f.call('DELETE', '/keys/1e3'), 400, 'invalid_request', 'id');
    assertError(
      await f.call('GET', '/keys', { query: { status: 'gone' } }),
      400,
      'invalid_request',
      'status',
    );
    assertError(
      await f.call('GET', '/keys', { query: { user_id: 'me' } }),
      400,
      'invalid_request',
      'user_id',
    );
  });
});
