import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseDeployments } from '../../app/src/upstream/deployments.ts';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { openSse } from '../helpers/sse-client.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
const UP = ['sk-upstream-err-1', 'sk-upstream-err-2'];

async function call(
  url: string,
  init: { headers?: Record<string, string>; body?: string; method?: string } = {},
) {
  const res = await fetch(url, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: init.body ?? (init.method === 'GET' ? undefined : JSON.stringify(CHAT)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) };
}

function assertError(
  r: Awaited<ReturnType<typeof call>>,
  status: number,
  code: string,
  type = status >= 500 ? 'server_error' : 'invalid_request_error',
) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body), ['error']);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(r.body.error.code, code);
  assert.equal(r.body.error.type, type);
  assert.ok(r.body.error.message.length > 10);
}

describe('proxy: the contract error table', () => {
  let stack: TestStack;
  let app: InProcessApp;
  let key: string;
  let url: string;

  before(async () => {
    stack = await startStack({ upstreamKeys: UP });
    app = await startAppInProcess(
      { ...stack.env, MAX_BODY_BYTES: '4096' },
      { timeouts: { headersMs: 400, bodyMs: 400, totalMs: 1_500 }, authTtlMs: 1_000 },
    );
    key = (await stack.issueKey()).key;
    url = `${app.url}/v1/chat/completions`;
  });
  after(async () => {
    await app?.stop();
    await stack?.destroy();
  });
  const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

  it('401 for no key, an unknown key, a revoked key, an expired key, a disabled user', async () => {
    assertError(await call(url), 401, 'invalid_api_key');
    assertError(
      await call(url, { headers: bearer('sk-gp-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') }),
      401,
      'invalid_api_key',
    );
    assertError(await call(url, { headers: bearer('not-even-shaped-like-a-key') }), 401, 'invalid_api_key');
    assertError(await call(url, { headers: { 'api-key': 'wrong' } }), 401, 'invalid_api_key');

    const revoked = await stack.issueKey();
    await stack.db.query("UPDATE api_keys SET status = 'revoked' WHERE id = $1", [revoked.id]);
    const r = await call(url, { headers: bearer(revoked.key) });
    assertError(r, 401, 'invalid_api_key');
    assert.match(r.body.error.message, /revoked/);

    const expired = await stack.issueKey({ expiresAt: new Date(Date.now() - 1000) });
    assertError(await call(url, { headers: bearer(expired.key) }), 401, 'invalid_api_key');

    const disabled = await stack.issueKey();
    await stack.db.query('UPDATE users SET disabled = true WHERE id = $1', [disabled.userId]);
    assertError(await call(url, { headers: bearer(disabled.key) }), 401, 'invalid_api_key');
  });

  it('a revoked key stops working within 5 s, without a restart', async () => {
    const k = await stack.issueKey();
    assert.equal((await call(url, { headers: bearer(k.key) })).status, 200);
    await stack.db.query("UPDATE api_keys SET status = 'revoked' WHERE id = $1", [k.id]);
    const revokedAt = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 6_000) {
      status = (await call(url, { headers: bearer(k.key) })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 401);
    assert.ok(Date.now() - revokedAt < 5_000, `took ${Date.now() - revokedAt} ms`);
  });

  it('404 model_not_found for a model the key may not use', async () => {
    const limited = await stack.issueKey({ models: ['gpt-4o-mini', 'text-embedding-*'] });
    const r = await call(url, { headers: bearer(limited.key) });
    assertError(r, 404, 'model_not_found');
    assert.equal(r.body.error.param, 'model');
    const ok = await call(url, {
      headers: bearer(limited.key),
      body: JSON.stringify({ ...CHAT, model: 'gpt-4o-mini' }),
    });
    assert.equal(ok.status, 200);
    const models = await call(`${app.url}/v1/models`, { method: 'GET', headers: bearer(limited.key) });
    const ids = models.body.data.map((m: { id: string }) => m.id);
    assert.ok(
      ids.includes('gpt-4o-mini') && ids.includes('text-embedding-3-small') && !ids.includes('gpt-4o'),
    );
  });

  it('400 invalid_request naming the field', async () => {
    const h = bearer(key);
    const cases: Array<[string, string | null]> = [
      ['{"model": "gpt-4o", "messages": [', null],
      ['[1,2]', null],
      ['{"messages":[{"role":"user","content":"x"}]}', 'model'],
      ['{"model":"gpt-4o"}', 'messages'],
      ['{"model":"gpt-4o","messages":[]}', 'messages'],
      ['{"model":"gpt-4o","messages":"hi"}', 'messages'],
      ['{"model":42,"messages":[{"role":"user","content":"x"}]}', 'model'],
      ['{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"stream":"yes"}', 'stream'],
    ];
    for (const [body, param] of cases) {
      const r = await call(url, { headers: h, body });
      assertError(r, 400, 'invalid_request');
      assert.equal(r.body.error.param, param, body);
    }
    // OpenAI documents stream as boolean or null: null asks for no stream.
    const nullStream = await call(url, { headers: h, body: JSON.stringify({ ...CHAT, stream: null }) });
    assert.equal(nullStream.status, 200, JSON.stringify(nullStream.body));
    assert.equal(nullStream.body.object, 'chat.completion');
    const emb = await call(`${app.url}/v1/embeddings`, {
      headers: h,
      body: '{"model":"text-embedding-3-small"}',
    });
    assert.equal(emb.body.error.param, 'input');
  });

  it('404 unknown_url, 413 request_too_large, 415 unsupported_media_type', async () => {
    assertError(await call(`${app.url}/v1/chat/complete`, { headers: bearer(key) }), 404, 'unknown_url');
    assertError(await call(`${app.url}/v2/models`, { method: 'GET' }), 404, 'unknown_url');
    const big = JSON.stringify({ ...CHAT, messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    assertError(await call(url, { headers: bearer(key), body: big }), 413, 'request_too_large');
    // Sent chunked, without a Content-Length to refuse early on: refused once the limit is crossed.
    const chunked = await fetch(url, {
      method: 'POST',
      headers: { ...bearer(key), 'content-type': 'application/json' },
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit);
    assertError(
      { status: chunked.status, headers: chunked.headers, body: await chunked.json() },
      413,
      'request_too_large',
    );
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...bearer(key), 'content-type': 'text/plain' },
      body: 'hi',
    });
    assertError(
      { status: res.status, headers: res.headers, body: await res.json() },
      415,
      'unsupported_media_type',
    );
    // The media type is matched case-insensitively, parameters aside; `+json` types are JSON too.
    for (const type of ['Application/JSON; charset=UTF-8', 'application/merge-patch+json']) {
      const ok = await fetch(url, {
        method: 'POST',
        headers: { ...bearer(key), 'content-type': type },
        body: JSON.stringify(CHAT),
      });
      assert.equal(ok.status, 200, type);
      await ok.arrayBuffer();
    }
  });

  it('an upstream 400/404 goes back unchanged, is not retried and does not count against the key', async () => {
    stack.fake.clearRequests();
    const r = await call(url, {
      headers: bearer(key),
      body: JSON.stringify({ ...CHAT, model: 'no-such-model' }),
    });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'model_not_found');
    assert.match(r.body.error.message, /no-such-model/);
    assert.equal(stack.fake.requests.length, 1);
    stack.fake.setKeyBehavior(UP[0] as string, 'content_filter', { times: 1 });
    stack.fake.setKeyBehavior(UP[1] as string, 'content_filter', { times: 1 });
    const filtered = await call(url, { headers: bearer(key) });
    assert.equal(filtered.status, 400);
    assert.equal(stack.fake.requests.length, 2);
    stack.fake.clearKeyBehaviors();
    const { rows } = await stack.db.query('SELECT failure_count, status FROM upstream_keys');
    assert.ok(rows.every((row) => row.failure_count === 0 && row.status === 'active'));
  });

  it('a 403 refusing the model, not the key, tries the next key; relayed only when every key refuses', async () => {
    const keysUntouched = async () => {
      const { rows } = await stack.db.query('SELECT failure_count, status, last_error FROM upstream_keys');
      assert.deepEqual(rows, [
        { failure_count: 0, status: 'active', last_error: null },
        { failure_count: 0, status: 'active', last_error: null },
      ]);
    };
    // Keys of two OpenAI projects, of which only the second may use the model.
    stack.fake.clearKeyBehaviors();
    stack.fake.clearRequests();
    stack.fake.setKeyBehavior(UP[0] as string, 'model_no_access');
    try {
      // Keys are taken in turn: one of the two requests starts with the refusing key.
      for (let i = 0; i < 2; i++) assert.equal((await call(url, { headers: bearer(key) })).status, 200);
      const asked = stack.fake.requests.map((r) => [r.key, r.status]);
      assert.deepEqual(
        asked.filter(([k]) => k === UP[0]),
        [[UP[0], 403]],
      );
      assert.deepEqual(
        asked.filter(([k]) => k === UP[1]),
        [
          [UP[1], 200],
          [UP[1], 200],
        ],
      );
      await keysUntouched();

      stack.fake.setKeyBehavior(UP[1] as string, 'model_no_access');
      stack.fake.clearRequests();
      const refused = await call(url, { headers: bearer(key) });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'model_not_found');
      assert.match(refused.body.error.message, /does not have access to model `gpt-4o`/);
      assert.deepEqual(stack.fake.requests.map((r) => r.key).sort(), [...UP].sort());
      await keysUntouched();
    } finally {
      stack.fake.clearKeyBehaviors();
    }
  });

  it('a stream that keeps sending outlives the total deadline (which covers getting an answer)', async () => {
    stack.fake.clearKeyBehaviors();
    stack.fake.setDeltaDelay(250);
    try {
      const { key: unlimited } = await stack.issueKey({ rpm: 0 });
      const started = Date.now();
      const res = await openSse(url, bearer(unlimited), { ...CHAT, stream: true });
      assert.equal(res.status, 200);
      const events = await res.rest();
      assert.ok(Date.now() - started > 1_500, 'longer than totalMs');
      assert.equal(events.at(-1), 'data: [DONE]');
    } finally {
      stack.fake.setDeltaDelay(0);
    }
  });

  it('502 upstream_error after retries, 504 upstream_timeout, 503 when every key is disabled', async () => {
    for (const k of UP) stack.fake.setKeyBehavior(k, 'server_error', { times: 1 });
    assertError(await call(url, { headers: bearer(key) }), 502, 'upstream_error');

    for (const k of UP) stack.fake.setKeyBehavior(k, 'hang', { times: 1 });
    const started = Date.now();
    assertError(await call(url, { headers: bearer(key) }), 504, 'upstream_timeout');
    assert.ok(Date.now() - started < 3_000);

    for (const k of UP) stack.fake.setKeyBehavior(k, 'invalid_key');
    const first = await call(url, { headers: bearer(key) });
    assertError(first, 503, 'upstream_unavailable');
    const t = Date.now();
    assertError(await call(url, { headers: bearer(key) }), 503, 'upstream_unavailable');
    assert.ok(Date.now() - t < 500, 'with no usable key the 503 comes at once');
    stack.fake.clearKeyBehaviors();
  });
});

describe('proxy: an Azure resource that lacks the deployment', () => {
  let stack: TestStack;
  let app: InProcessApp;
  let key: string;
  const AZ = ['azure-key-1', 'azure-key-2'];

  before(async () => {
    stack = await startStack();
    const deployments = parseDeployments(['gpt-4o']);
    if ('error' in deployments) throw new Error(deployments.error);
    await stack.seedUpstreamKeys(
      AZ.map((k) => ({ provider: 'azure', key: k, endpoint: stack.fake.azureEndpoint, deployments })),
    );
    app = await startAppInProcess({ ...stack.env, UPSTREAM_TYPE: 'azure' });
    key = (await stack.issueKey({ rpm: 0 })).key;
  });
  after(async () => {
    await app?.stop();
    await stack?.destroy();
  });

  it("goes to the next key, blames neither, tells the operator; the 404 is relayed only when every key's resource lacks it", async () => {
    const url = `${app.url}/v1/chat/completions`;
    const keysUntouched = async () => {
      const { rows } = await stack.db.query(
        'SELECT failure_count, status, last_error FROM upstream_keys ORDER BY id',
      );
      assert.deepEqual(
        rows,
        AZ.map(() => ({ failure_count: 0, status: 'active', last_error: null })),
      );
    };
    // The fake answers a key with this behaviour as Azure does a resource without the deployment.
    stack.fake.setKeyBehavior(AZ[1] as string, 'model_no_access');
    try {
      // Keys are taken in turn: half the requests start with the resource lacking it.
      for (let i = 0; i < 4; i++)
        assert.equal((await call(url, { headers: { authorization: `Bearer ${key}` } })).status, 200);
      const asked = stack.fake.requests.map((r) => [r.key, r.status]);
      assert.deepEqual(
        asked.filter(([k]) => k === AZ[1]),
        [
          [AZ[1], 404],
          [AZ[1], 404],
        ],
      );
      assert.equal(asked.filter(([k, s]) => k === AZ[0] && s === 200).length, 4);
      await keysUntouched();
      const { rows } = await stack.db.query<{ id: number }>('SELECT id FROM upstream_keys ORDER BY id');
      const warned = app.logs().filter((l) => l.level === 'warn' && l.deployment !== undefined);
      assert.deepEqual(
        warned.map((l) => [l.upstreamKeyId, l.deployment]),
        [[rows[1]?.id, 'gpt-4o']],
        'one line for the two refusals (throttled), naming the key and deployment',
      );
      assert.doesNotMatch(app.logText(), /azure-key-/, 'no upstream key in the log');

      stack.fake.setKeyBehavior(AZ[0] as string, 'model_no_access');
      stack.fake.clearRequests();
      const refused = await call(url, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(refused.status, 404);
      assert.equal(refused.body.error.code, 'DeploymentNotFound');
      assert.deepEqual(stack.fake.requests.map((r) => r.key).sort(), [...AZ].sort());
      await keysUntouched();
    } finally {
      stack.fake.clearKeyBehaviors();
    }
  });
});
