// The admin API's security table, generated from the router's own list of routes: every route ×
// {no key, user key, revoked, expired, disabled user, admin key (Bearer and api-key header)}.
// A new route is covered the moment it is registered.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PREFIX, ADMIN_ROUTES, adminRoutes, routeList } from '../../app/src/admin/index.ts';
import { type AdminFixture, type Answer, assertError, startAdminFixture } from './admin-fixture.ts';

const NOWHERE = 2_147_483_647;

describe('admin API security table', () => {
  let f: AdminFixture;
  let keys: Record<'user' | 'revoked' | 'expired' | 'disabled', string>;
  let victim: { key: string; id: number; userId: number };
  let upstreamId: number;
  // The router is asked for its routes; deps are never called while listing.
  const routes = routeList(
    adminRoutes({
      db: undefined as never,
      authenticator: { invalidate() {} },
      box: undefined as never,
      logger: undefined as never,
      authenticate: async () => {},
    }),
  );

  before(async () => {
    f = await startAdminFixture();
    const { stack } = f;
    victim = await stack.issueKey({ username: 'victim' });
    const user = await stack.issueKey();
    const revoked = await stack.issueKey({ admin: true });
    await stack.db.query("UPDATE api_keys SET status = 'revoked', revoked_at = now() WHERE id = $1", [
      revoked.id,
    ]);
    const expired = await stack.issueKey({ admin: true, expiresAt: new Date(Date.now() - 60_000) });
    const disabled = await stack.issueKey({ admin: true });
    await stack.db.query('UPDATE users SET disabled = true WHERE id = $1', [disabled.userId]);
    keys = { user: user.key, revoked: revoked.key, expired: expired.key, disabled: disabled.key };
    const up = await stack.db.query<{ id: number }>('SELECT id FROM upstream_keys LIMIT 1');
    upstreamId = up.rows[0]?.id as number;
  });
  after(async () => {
    await f?.close();
  });

  it('lists exactly the declared routes, each once, all under /admin/v1', () => {
    assert.equal(routes.length, ADMIN_ROUTES.length);
    assert.equal(new Set(routes.map((r) => `${r.method} ${r.path}`)).size, routes.length);
    for (const r of routes) assert.ok(r.path.startsWith(`${ADMIN_PREFIX}/`), r.path);
    assert.ok(routes.length >= 13);
  });

  /** A request an intruder would like to succeed: real ids, bodies that would change things. */
  function harmful(method: string, path: string) {
    const id = path.includes('upstream-keys')
      ? upstreamId
      : path.includes('/users')
        ? victim.userId
        : victim.id;
    const bodies: Record<string, unknown> = {
      [`POST ${ADMIN_PREFIX}/users`]: { username: 'intruder', email: 'intruder@example.com', is_admin: true },
      [`POST ${ADMIN_PREFIX}/keys`]: { user_id: victim.userId, name: 'intruder' },
      [`POST ${ADMIN_PREFIX}/upstream-keys`]: { provider: 'openai', key: 'sk-intruder-0000000000' },
      [`PATCH ${ADMIN_PREFIX}/users/:id`]: { disabled: true },
      [`PATCH ${ADMIN_PREFIX}/keys/:id`]: { rpm: 1 },
      [`PATCH ${ADMIN_PREFIX}/upstream-keys/:id`]: { status: 'disabled' },
    };
    return { url: path.replace(':id', String(id)), body: bodies[`${method} ${path}`] };
  }

  async function snapshot() {
    const q = async (sql: string) => JSON.stringify((await f.stack.db.query(sql)).rows);
    return [
      await q('SELECT id, username, is_admin, disabled FROM users ORDER BY id'),
      await q('SELECT id, status, rpm, name FROM api_keys ORDER BY id'),
      await q('SELECT id, status FROM upstream_keys ORDER BY id'),
    ].join('\n');
  }

  const send = (method: string, url: string, key: string | null, body: unknown, header = 'bearer') => {
    const headers: Record<string, string> = {};
    if (key !== null && header === 'bearer') headers.authorization = `Bearer ${key}`;
    if (key !== null && header === 'api-key') headers['api-key'] = key;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${f.app.url}${url}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    }).then(async (res) => ({ status: res.status, headers: res.headers, text: await res.text() }));
  };

  it('refuses every route without a usable admin key, before touching anything', async () => {
    const before = await snapshot();
    const cases: Array<[string, string | null, number, string]> = [
      ['no key', null, 401, 'invalid_api_key'],
      ['user key', 'user', 403, 'insufficient_permissions'],
      ['revoked admin key', 'revoked', 401, 'invalid_api_key'],
      ['expired admin key', 'expired', 401, 'invalid_api_key'],
      ["disabled admin user's key", 'disabled', 401, 'invalid_api_key'],
    ];
    let checked = 0;
    for (const route of routes) {
      const { url, body } = harmful(route.method, route.path);
      for (const [label, which, status, code] of cases) {
        const key = which === null ? null : keys[which as keyof typeof keys];
        for (const header of ['bearer', 'api-key']) {
          if (key === null && header === 'api-key') continue;
          const r = await send(route.method, url, key, body, header);
          const answer = { ...r, body: JSON.parse(r.text) } as Answer;
          assertError(answer, status, code);
          assert.equal(answer.body.error?.type, 'invalid_request_error', `${label} ${route.method} ${url}`);
          checked++;
        }
      }
    }
    assert.equal(checked, routes.length * 9);
    assert.equal(await snapshot(), before, 'a refused request changed the database');
  });

  it('lets an admin key through on every route (Bearer and api-key header)', async () => {
    for (const route of routes) {
      const url = route.path.replace(':id', String(NOWHERE));
      const body = route.method === 'POST' || route.method === 'PATCH' ? {} : undefined;
      for (const header of ['bearer', 'api-key']) {
        const r = await send(route.method, url, f.admin.key, body, header);
        const where = `${header} ${route.method} ${url}: ${r.status} ${r.text}`;
        assert.ok(![401, 403].includes(r.status) && r.status < 500, where);
        // It reached the route: a 404 here is "no such id", never "no such URL".
        assert.doesNotMatch(r.text, /Unknown request URL/, where);
        assert.match(r.headers.get('content-type') ?? '', /^application\/json/, where);
        assert.equal(r.headers.get('cache-control'), 'no-store', where);
      }
    }
  });

  it('answers an unknown admin path with unknown_url, whoever asks', async () => {
    for (const key of [f.admin.key, null]) {
      const r = await send('GET', `${ADMIN_PREFIX}/nothing-here`, key, undefined);
      assertError({ ...r, body: JSON.parse(r.text) } as Answer, 404, 'unknown_url');
    }
    const wrongMethod = await send('PUT', `${ADMIN_PREFIX}/users`, f.admin.key, {});
    assert.equal(wrongMethod.status, 404);
  });
});
