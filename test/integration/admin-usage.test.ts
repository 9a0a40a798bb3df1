// /admin/v1/usage and /admin/v1/requests over real usage_logs rows in Postgres: totals, groups,
// the zero-filled daily series, the request log's cursor paging and filters, validation.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/processes.ts';
import { type AdminFixture, assertError, type Page, request, startAdminFixture } from './admin-fixture.ts';

interface Totals {
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}
interface Usage {
  group_by: string;
  from: string;
  to: string;
  totals: Totals;
  data: Array<Totals & { group: string | number | null; label: string | null }>;
  series: Array<Totals & { day: string }>;
}
interface LogRow {
  id: string;
  request_id: string;
  key_id: number | null;
  key_prefix: string | null;
  username: string | null;
  model: string | null;
  total_tokens: number;
  status_code: number;
  created_at: string;
}

describe('admin API: usage and request log', () => {
  let f: AdminFixture;
  let a: { key: string; id: number; userId: number };
  let b: { key: string; id: number; userId: number };

  async function log(
    key: { id: number; userId: number },
    at: string,
    model: string | null,
    tokens: number[],
    status = 200,
  ) {
    const [p = 0, c = 0] = tokens;
    await f.stack.db.query(
      `INSERT INTO usage_logs (id, request_id, api_key_id, user_id, route, model, prompt_tokens, completion_tokens,
         total_tokens, status_code, latency_ms, created_at)
       VALUES ($1, $2, $3, $4, 'chat/completions', $5, $6, $7, $8, $9, 12, $10)`,
      [randomUUID(), `req_${randomUUID()}`, key.id, key.userId, model, p, c, p + c, status, at],
    );
  }

  before(async () => {
    f = await startAdminFixture();
    a = await f.stack.issueKey({ username: 'ann' });
    b = await f.stack.issueKey({ username: 'ben' });
    await f.stack.db.query("UPDATE api_keys SET name = 'ann-laptop' WHERE id = $1", [a.id]);
    await log(a, '2024-02-29T12:00:00Z', 'gpt-4o', [1000, 1000]); // before the range
    await log(a, '2024-03-01T10:00:00Z', 'gpt-4o', [10, 5]);
    await log(a, '2024-03-01T23:59:59.999Z', 'gpt-4o-mini', [1, 1]);
    await log(b, '2024-03-02T00:00:00Z', 'gpt-4o', [100, 50]);
    await log(b, '2024-03-04T12:00:00Z', null, [0, 0], 401);
    await log(b, '2024-03-05T00:00:00Z', 'gpt-4o', [1000, 1000]); // at `to`: excluded
  });
  after(async () => {
    await f?.close();
  });

  const usage = (query: Record<string, string | number>) => f.call<Usage>('GET', '/usage', { query });
  const RANGE = { from: '2024-03-01', to: '2024-03-05' };

  it('totals and a zero-filled series per UTC day over [from, to)', async () => {
    const r = await usage({ ...RANGE, group_by: 'day' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.totals, {
      requests: 4,
      errors: 1,
      prompt_tokens: 111,
      completion_tokens: 56,
      total_tokens: 167,
    });
    assert.deepEqual(
      r.body.series.map((s) => [s.day, s.requests, s.total_tokens]),
      [
        ['2024-03-01', 2, 17],
        ['2024-03-02', 1, 150],
        ['2024-03-03', 0, 0],
        ['2024-03-04', 1, 0],
      ],
    );
    assert.deepEqual(
      r.body.data.map((d) => d.group),
      ['2024-03-01', '2024-03-02', '2024-03-04'],
    );
    assert.equal(r.body.from, '2024-03-01T00:00:00.000Z');
    assert.equal(r.body.to, '2024-03-05T00:00:00.000Z');
  });

  it('groups by model, user and key, busiest first', async () => {
    const byModel = await usage({ ...RANGE, group_by: 'model' });
    assert.deepEqual(
      byModel.body.data.map((d) => [d.group, d.requests, d.total_tokens, d.errors]),
      [
        ['gpt-4o', 2, 165, 0],
        ['gpt-4o-mini', 1, 2, 0],
        [null, 1, 0, 1],
      ],
    );
    const byUser = await usage({ ...RANGE, group_by: 'user' });
    assert.deepEqual(
      byUser.body.data.map((d) => [d.group, d.label, d.total_tokens]),
      [
        [b.userId, 'ben', 150],
        [a.userId, 'ann', 17],
      ],
    );
    const byKey = await usage({ ...RANGE, group_by: 'key' });
    assert.equal(byKey.body.data[1]?.group, a.id);
    assert.match(byKey.body.data[1]?.label ?? '', /^ann-laptop sk-gp-.{8}…$/);
  });

  it('filters by key and user; accepts date-times with offsets', async () => {
    const onlyA = await usage({ ...RANGE, key_id: a.id });
    assert.equal(onlyA.body.totals.requests, 2);
    const onlyB = await usage({ ...RANGE, user_id: b.userId });
    assert.equal(onlyB.body.totals.total_tokens, 150);
    // 12:00+02:00 is 10:00Z: the first row of the range is included, exactly.
    const precise = await usage({ from: '2024-03-01T12:00:00+02:00', to: '2024-03-01T10:00:01Z' });
    assert.equal(precise.body.totals.requests, 1);
    assert.deepEqual(
      precise.body.series.map((s) => s.day),
      ['2024-03-01'],
    );
  });

  it('defaults to the last 30 days', async () => {
    const r = await usage({});
    assert.equal(r.status, 200);
    assert.equal(r.body.group_by, 'day');
    assert.ok(r.body.series.length >= 30 && r.body.series.length <= 31, String(r.body.series.length));
    assert.equal(r.body.totals.requests, 0);
  });

  it('answers usage validation errors with 400 naming the parameter', async () => {
    assertError(await usage({ group_by: 'team' }), 400, 'invalid_request', 'group_by');
    assertError(await usage({ from: 'yesterday' }), 400, 'invalid_request', 'from');
    assertError(await usage({ to: '2024-13-01' }), 400, 'invalid_request', 'to');
    assertError(await usage({ from: '2024-03-05', to: '2024-03-01' }), 400, 'invalid_request', 'from');
    assertError(await usage({ from: '2022-01-01', to: '2024-01-01' }), 400, 'invalid_request', 'from');
    assertError(await usage({ key_id: 'x' }), 400, 'invalid_request', 'key_id');
    assertError(await usage({ limit: 5 }), 400, 'invalid_request', 'limit');
  });

  it('request log: newest first, metadata only, paged without gaps even on equal timestamps', async () => {
    const c = await f.stack.issueKey({ username: 'cat' });
    for (let i = 0; i < 5; i++) await log(c, '2024-06-01T08:00:00Z', 'gpt-4o', [i, 0]);
    await log(c, '2024-06-02T08:00:00Z', 'gpt-4o', [9, 9]);
    const seen: LogRow[] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const query: Record<string, string | number> = { key_id: c.id, limit: 2 };
      if (after) query.after = after;
      const page = await f.call<Page<LogRow>>('GET', '/requests', { query });
      assert.equal(page.status, 200, page.text);
      seen.push(...page.body.data);
      if (!page.body.has_more) break;
      after = page.body.data.at(-1)?.id;
    }
    assert.equal(seen.length, 6);
    assert.equal(new Set(seen.map((r) => r.id)).size, 6);
    assert.equal(seen[0]?.total_tokens, 18, 'newest first');
    assert.ok(
      seen.every((r) => r.key_id === c.id && r.username === 'cat' && r.key_prefix?.startsWith('sk-gp-')),
    );
    const first = seen[0] as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(first).sort(), [
      'completion_tokens',
      'created_at',
      'error_code',
      'estimated',
      'id',
      'key_id',
      'key_prefix',
      'latency_ms',
      'model',
      'prompt_tokens',
      'request_id',
      'route',
      'status_code',
      'stream',
      'total_tokens',
      'upstream_key_id',
      'user_id',
      'username',
    ]);

    const ranged = await f.call<Page<LogRow>>('GET', '/requests', {
      query: { from: '2024-03-01', to: '2024-03-02' },
    });
    assert.equal(ranged.body.data.length, 2);
    const byUser = await f.call<Page<LogRow>>('GET', '/requests', { query: { user_id: b.userId } });
    assert.equal(byUser.body.data.length, 3);
  });

  it('request log shows a real proxied request (written by the usage recorder)', async () => {
    const d = await f.stack.issueKey({ username: 'dan' });
    const chat = await f.chat(d.key);
    assert.equal(chat.status, 200, chat.text);
    const requestId = chat.headers.get('x-request-id');
    const row = await waitFor(
      async () => {
        const page = await f.call<Page<LogRow>>('GET', '/requests', { query: { key_id: d.id } });
        return page.body.data[0];
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the usage row of the proxied request' },
    );
    assert.equal(row.request_id, requestId);
    assert.equal(row.status_code, 200);
    assert.equal(row.model, 'gpt-4o-mini');
  });

  // README (Usage): a row for every authenticated request to the API routes, none for the admin API.
  it('the admin API writes no usage row; the API routes do, also for an admin key', async () => {
    const auditor = await f.stack.issueKey({ admin: true, username: 'auditor' });
    assert.equal((await f.call('GET', '/users', { key: auditor.key })).status, 200);
    assert.equal((await f.call('GET', '/nope', { key: auditor.key })).status, 404);
    const models = await request(`${f.app.url}/v1/models`, {
      headers: { authorization: `Bearer ${auditor.key}` },
    });
    assert.equal(models.status, 200, models.text);
    // Rows are written in order, so once the /v1/models row is there, an admin call's would be too.
    const routes = await waitFor(
      async () => {
        f.app.settle();
        const { rows } = await f.stack.db.query('SELECT route FROM usage_logs WHERE api_key_id = $1', [
          auditor.id,
        ]);
        return rows.length > 0 ? rows.map((r) => r.route) : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the usage row of GET /v1/models' },
    );
    assert.deepEqual(routes, ['/v1/models']);
  });

  it('answers request-log validation errors with 400 naming the parameter', async () => {
    const get = (query: Record<string, string>) => f.call('GET', '/requests', { query });
    assertError(await get({ after: '42' }), 400, 'invalid_request', 'after');
    assertError(await get({ after: randomUUID() }), 400, 'invalid_request', 'after');
    assertError(await get({ key_id: '0' }), 400, 'invalid_request', 'key_id');
    assertError(await get({ from: '01/03/2024' }), 400, 'invalid_request', 'from');
    assertError(await get({ limit: '500' }), 400, 'invalid_request', 'limit');
    assertError(await get({ body: 'true' }), 400, 'invalid_request', 'body');
  });
});
