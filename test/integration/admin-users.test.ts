// /admin/v1/users against real Postgres and Redis: happy paths, validation, pagination.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AdminFixture, assertError, type Page, startAdminFixture, type User } from './admin-fixture.ts';

describe('admin API: users', () => {
  let f: AdminFixture;
  before(async () => {
    f = await startAdminFixture();
  });
  after(async () => {
    await f?.close();
  });

  it('creates a user (201) and lists it with its active key count', async () => {
    const created = await f.call<User>('POST', '/users', {
      body: { username: 'alice', email: 'alice@example.com' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.username, 'alice');
    assert.equal(created.body.email, 'alice@example.com');
    assert.equal(created.body.is_admin, false);
    assert.equal(created.body.disabled, false);
    assert.equal(created.body.active_keys, 0);
    const admin = await f.call<User>('POST', '/users', {
      body: { username: 'bob.ops', email: 'bob@example.com', is_admin: true },
    });
    assert.equal(admin.body.is_admin, true);

    const list = await f.call<Page<User>>('GET', '/users');
    assert.equal(list.status, 200);
    const root = list.body.data.find((u) => u.username === 'root-admin');
    assert.equal(root?.active_keys, 1);
    assert.ok(list.body.data.some((u) => u.id === created.body.id));
  });

  it('counts as active keys only those a client can still use: an expired key is not one', async () => {
    const member = await f.stack.issueKey({ username: 'frank' });
    const activeKeys = async () => {
      const list = await f.call<Page<User>>('GET', '/users', { query: { limit: 100 } });
      return list.body.data.find((u) => u.id === member.userId)?.active_keys;
    };
    assert.equal(await activeKeys(), 1);
    await f.stack.db.query("UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1", [
      member.id,
    ]);
    assertError(await f.chat(member.key), 401, 'invalid_api_key');
    assert.equal(await activeKeys(), 0, 'the expired key is counted');
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const fresh = await f.call('POST', '/keys', { body: { user_id: member.userId, expires_at: later } });
    assert.equal(fresh.status, 201, fresh.text);
    assert.equal(await activeKeys(), 1);
  });

  it('pages with ?limit=&after= and has_more, oldest first', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await f.call('POST', '/users', {
        body: { username: `pager${i}`, email: `p${i}@example.com` },
      });
      assert.equal(r.status, 201);
    }
    const seen: number[] = [];
    let after: number | undefined;
    for (let i = 0; i < 20; i++) {
      const query: Record<string, number> = { limit: 2 };
      if (after !== undefined) query.after = after;
      const page = await f.call<Page<User>>('GET', '/users', { query });
      assert.ok(page.body.data.length <= 2);
      seen.push(...page.body.data.map((u) => u.id));
      if (!page.body.has_more) break;
      after = page.body.data.at(-1)?.id;
    }
    const total = await f.stack.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
    assert.equal(seen.length, total.rows[0]?.n);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
    );
    const last = await f.call<Page<User>>('GET', '/users', { query: { after: Math.max(...seen) } });
    assert.deepEqual(last.body, { data: [], has_more: false });
  });

  it('disables a user (its keys are refused at once) and enables it again', async () => {
    const member = await f.stack.issueKey({ username: 'carol' });
    assert.equal((await f.chat(member.key)).status, 200);
    const off = await f.call<User>('PATCH', `/users/${member.userId}`, { body: { disabled: true } });
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.disabled, true);
    assertError(await f.chat(member.key), 401, 'invalid_api_key');
    const on = await f.call<User>('PATCH', `/users/${member.userId}`, { body: { disabled: false } });
    assert.equal(on.body.disabled, false);
    assert.equal((await f.chat(member.key)).status, 200);
  });

  it('changes the admin flag and email; a user key gains admin rights through it', async () => {
    const member = await f.stack.issueKey({ username: 'dave' });
    assertError(await f.call('GET', '/users', { key: member.key }), 403, 'insufficient_permissions');
    const r = await f.call<User>('PATCH', `/users/${member.userId}`, {
      body: { is_admin: true, email: 'dave@corp.example' },
    });
    assert.equal(r.body.is_admin, true);
    assert.equal(r.body.email, 'dave@corp.example');
    assert.equal((await f.call('GET', '/users', { key: member.key })).status, 200);
  });

  it('refuses to let an admin disable itself or drop its own admin flag', async () => {
    const self = `/users/${f.admin.userId}`;
    assertError(
      await f.call('PATCH', self, { body: { disabled: true } }),
      400,
      'invalid_request',
      'disabled',
    );
    assertError(
      await f.call('PATCH', self, { body: { is_admin: false } }),
      400,
      'invalid_request',
      'is_admin',
    );
    assert.equal((await f.call('GET', '/users')).status, 200);
  });

  it('answers validation errors with 400 invalid_request naming the field', async () => {
    const post = (body: unknown) => f.call('POST', '/users', { body });
    assertError(await post({ email: 'x@example.com' }), 400, 'invalid_request', 'username');
    assertError(
      await post({ username: 'has space', email: 'x@example.com' }),
      400,
      'invalid_request',
      'username',
    );
    assertError(
      await post({ username: 'x'.repeat(65), email: 'x@example.com' }),
      400,
      'invalid_request',
      'username',
    );
    assertError(await post({ username: 'erin' }), 400, 'invalid_request', 'email');
    assertError(await post({ username: 'erin', email: 'not-an-email' }), 400, 'invalid_request', 'email');
    // Postgres text cannot hold NUL: refused here as the client's mistake, not a database error.
    assertError(await post({ username: 'erin', email: 'e\u0000@x.y' }), 400, 'invalid_request', 'email');
    assertError(
      await post({ username: 'erin', email: 'e@x.y', is_admin: 'yes' }),
      400,
      'invalid_request',
      'is_admin',
    );
    assertError(
      await post({ username: 'erin', email: 'e@x.y', admin: true }),
      400,
      'invalid_request',
      'admin',
    );
    assertError(await post([1, 2]), 400, 'invalid_request');
    assertError(await f.call('POST', '/users', { raw: '{"username":' }), 400, 'invalid_request');
    assertError(
      await f.call('POST', '/users', {
        raw: 'username=erin',
        contentType: 'application/x-www-form-urlencoded',
      }),
      415,
      'unsupported_media_type',
    );
    const dup = await post({ username: 'root-admin', email: 'other@example.com' });
    assertError(dup, 400, 'invalid_request', 'username');
    assert.match(dup.body.error?.message ?? '', /already exists/);

    assertError(await f.call('PATCH', `/users/${f.admin.userId}`, { body: {} }), 400, 'invalid_request');
    assertError(
      await f.call('PATCH', '/users/abc', { body: { disabled: true } }),
      400,
      'invalid_request',
      'id',
    );
    assertError(
      await f.call('PATCH', '/users/0', { body: { disabled: true } }),
      400,
      'invalid_request',
      'id',
    );
    assertError(await f.call('PATCH', '/users/99999', { body: { disabled: true } }), 404, 'unknown_url');

    const list = (query: Record<string, string>) => f.call('GET', '/users', { query });
    assertError(await list({ limit: '0' }), 400, 'invalid_request', 'limit');
    assertError(await list({ limit: '101' }), 400, 'invalid_request', 'limit');
    assertError(await list({ limit: 'ten' }), 400, 'invalid_request', 'limit');
    assertError(await list({ after: '-1' }), 400, 'invalid_request', 'after');
    assertError(await list({ sort: 'name' }), 400, 'invalid_request', 'sort');
    const twice = await f.call('GET', '/users?limit=1&limit=2');
    assertError(twice, 400, 'invalid_request', 'limit');
  });
});
