import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseDeployments } from '../../app/src/upstream/deployments.ts';
import { type InProcessApp, startApp, startAppInProcess } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';
import { openSse } from '../helpers/sse-client.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { rowsOnceThere } from '../helpers/usage-rows.ts';

const CHAT = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

async function chat(url: string, key: string, body = CHAT): Promise<number> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

async function keyRows(stack: TestStack) {
  const { rows } = await stack.db.query(
    `SELECT u.id, u.status, u.failure_count, u.last_error, u.cooldown_until FROM upstream_keys u ORDER BY id`,
  );
  return rows as Array<{
    id: number;
    status: string;
    failure_count: number;
    last_error: string | null;
    cooldown_until: Date | null;
  }>;
}

describe('upstream key pool: failover and self-healing', () => {
  let stack: TestStack;
  let proxyKey: string;
  const [BAD, FAILING, GOOD] = ['sk-pool-bad', 'sk-pool-failing', 'sk-pool-good'];

  before(async () => {
    stack = await startStack({ upstreamKeys: [BAD, FAILING, GOOD] });
    proxyKey = (await stack.issueKey()).key;
  });
  after(async () => {
    await stack?.destroy();
  });

  it('with one bad and one failing key among three, every request succeeds and the rows say why', async () => {
    const app = await startAppInProcess(stack.env);
    try {
      stack.fake.setKeyBehavior(BAD, 'invalid_key');
      stack.fake.setKeyBehavior(FAILING, 'server_error');
      const statuses: number[] = [];
      for (let i = 0; i < 15; i++) statuses.push(await chat(app.url, proxyKey));
      assert.deepEqual(new Set(statuses), new Set([200]));
      await waitFor(async () => (await keyRows(stack))[1]?.status === 'cooling', {
        timeoutMs: 3_000,
        what: 'failing key cooling',
      });
      const [bad, failing, good] = await keyRows(stack);
      assert.equal(bad?.status, 'disabled');
      assert.equal(bad?.last_error, '401 invalid_api_key');
      assert.equal(failing?.status, 'cooling');
      assert.equal(failing?.failure_count, 3);
      assert.equal(failing?.last_error, '500 server_error');
      assert.equal(good?.status, 'active');
      // The bad key was tried once, the failing one until it cooled; the load spread over the rest.
      const chats = stack.fake.requests.filter((r) => r.endpoint === 'chat');
      assert.equal(chats.filter((r) => r.key === BAD).length, 1);
      assert.equal(chats.filter((r) => r.key === FAILING).length, 3);
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
      await stack.db.query(
        "UPDATE upstream_keys SET status = 'active', failure_count = 0, last_error = NULL, cooldown_until = NULL",
      );
    }
  });

  it('a key cooled by a 429 comes back when its Retry-After is over', async () => {
    const app = await startAppInProcess(stack.env);
    try {
      stack.fake.clearRequests();
      for (const k of [BAD, FAILING, GOOD])
        stack.fake.setKeyBehavior(k, { kind: 'rate_limited', retryAfterSeconds: 1 }, { times: 1 });
      const first = await chat(app.url, proxyKey);
      assert.equal(
        first,
        503,
        `all three answered 429: no usable key; ${JSON.stringify(stack.fake.requests.map((r) => [r.path, r.key, r.status]))} ${JSON.stringify(await keyRows(stack))}`,
      );
      await waitFor(
        async () =>
          (await keyRows(stack)).every(
            (r) => r.status === 'cooling' && r.last_error === '429 rate_limit_exceeded',
          ),
        { timeoutMs: 2_000, what: 'all keys cooling after 429s' },
      );
      assert.equal(await chat(app.url, proxyKey), 503, 'still cooling');
      const active = async () =>
        (await app.registry.getSingleMetricAsString('gpt_proxy_upstream_keys')).match(
          /gpt_proxy_upstream_keys\{provider="openai",state="active"\} (\d+)/,
        )?.[1];
      assert.equal(await active(), '0');
      await new Promise((r) => setTimeout(r, 1_100));
      // Usable again before any request has used them: the metric (and its alert) says so.
      assert.equal(await active(), '3');
      assert.equal(await chat(app.url, proxyKey), 200);
      await waitFor(async () => (await keyRows(stack)).some((r) => r.status === 'active'), {
        timeoutMs: 2_000,
        what: 'a key active again',
      });
    } finally {
      await app.stop();
      await stack.db.query(
        "UPDATE upstream_keys SET status = 'active', failure_count = 0, last_error = NULL, cooldown_until = NULL",
      );
    }
  });

  it("a 429 without Retry-After cools the key until the exhausted limit's reset, not 20 s", async () => {
    const app = await startAppInProcess(stack.env);
    try {
      // An RPM 429 that says the limit resets in 120ms, and nothing else to go by.
      const limited = { kind: 'rate_limited', reset: '120ms', retryAfter: false } as const;
      for (const k of [BAD, FAILING, GOOD]) stack.fake.setKeyBehavior(k, limited, { times: 1 });
      const asked = Date.now();
      assert.equal(await chat(app.url, proxyKey), 503, 'all three answered 429');
      await waitFor(async () => (await keyRows(stack)).every((r) => r.status === 'cooling'), {
        timeoutMs: 2_000,
        what: 'all keys cooling after 429s',
      });
      for (const row of await keyRows(stack)) {
        const ms = (row.cooldown_until?.getTime() ?? 0) - asked;
        assert.ok(ms > 0 && ms < 2_000, `cooled for ${ms} ms: the 1 s floor, not the 20 s default`);
      }
      await new Promise((r) => setTimeout(r, 1_100));
      assert.equal(await chat(app.url, proxyKey), 200);
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
      await stack.db.query(
        "UPDATE upstream_keys SET status = 'active', failure_count = 0, last_error = NULL, cooldown_until = NULL",
      );
    }
  });

  it('two instances share key state and probe a disabled key once per interval; it heals when accepted', async () => {
    const env = { ...stack.env, UPSTREAM_PROBE_INTERVAL_SECONDS: '1', LOG_LEVEL: 'warn' };
    const [a, b] = await Promise.all([startApp({ env }), startApp({ env })]);
    try {
      stack.fake.setKeyBehavior(BAD, 'invalid_key');
      for (let i = 0; i < 6; i++) assert.equal(await chat(a.url, proxyKey), 200);
      assert.equal((await keyRows(stack))[0]?.status, 'disabled');

      // Instance b learns of it from Postgres within its refresh interval and never tries the key.
      await new Promise((r) => setTimeout(r, 2_200));
      stack.fake.clearRequests();
      for (let i = 0; i < 6; i++) assert.equal(await chat(b.url, proxyKey), 200);
      assert.equal(stack.fake.requests.filter((r) => r.endpoint === 'chat' && r.key === BAD).length, 0);

      // Probes: at most one per interval across both instances.
      stack.fake.clearRequests();
      await new Promise((r) => setTimeout(r, 4_000));
      const probes = stack.fake.requests.filter((r) => r.endpoint === 'models' && r.key === BAD);
      assert.ok(
        probes.length >= 2 && probes.length <= 5,
        `${probes.length} probes in 4 s with a 1 s interval`,
      );
      assert.equal((await keyRows(stack))[0]?.status, 'disabled');

      stack.fake.setKeyBehavior(BAD, 'ok');
      await waitFor(async () => (await keyRows(stack))[0]?.status === 'active', {
        timeoutMs: 5_000,
        what: 'probe heals key',
      });
      await new Promise((r) => setTimeout(r, 2_200));
      stack.fake.clearRequests();
      for (let i = 0; i < 6; i++) await chat(b.url, proxyKey);
      assert.ok(
        stack.fake.requests.some((r) => r.endpoint === 'chat' && r.key === BAD),
        'healed key is used again',
      );
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      stack.fake.clearKeyBehaviors();
    }
  });

  it('refreshes asked for while one runs (a slow database under load) all complete, none fails', async () => {
    const app = await startAppInProcess(stack.env);
    try {
      const pool = app.services.pool;
      await Promise.all([pool.refresh(), pool.refresh(), pool.refresh(), chat(app.url, proxyKey)]);
      await pool.refresh();
      assert.equal(pool.states.length, 3);
      assert.deepEqual(
        app.logs().filter((l) => l.level === 'error'),
        [],
      );
    } finally {
      await app.stop();
    }
  });

  it('every key failing gives the 503 quickly', async () => {
    const app = await startAppInProcess(stack.env);
    try {
      for (const k of [BAD, FAILING, GOOD]) stack.fake.setKeyBehavior(k, 'invalid_key');
      const t0 = Date.now();
      assert.equal(await chat(app.url, proxyKey), 503);
      assert.equal(await chat(app.url, proxyKey), 503);
      assert.ok(Date.now() - t0 < 1_000, `took ${Date.now() - t0} ms`);
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
    }
  });
});

describe('upstream key pool: Azure', () => {
  let stack: TestStack;
  let proxyKey: string;
  let app: InProcessApp | undefined;

  before(async () => {
    stack = await startStack();
    stack.fake.setDeployment('gpt-35-turbo', 'gpt-35-turbo');
    const deployments = parseDeployments(['gpt-35-turbo', 'gpt-4o', 'embed=text-embedding-3-small']);
    if ('error' in deployments) throw new Error(deployments.error);
    await stack.seedUpstreamKeys([
      { provider: 'azure', key: 'azure-key-1', endpoint: stack.fake.azureEndpoint, deployments },
    ]);
    proxyKey = (await stack.issueKey({ models: ['gpt-3.5-turbo', 'gpt-4o', 'embed'] })).key;
  });
  after(async () => {
    await app?.stop();
    await stack?.destroy();
  });

  for (const version of ['2024-10-21', 'v1']) {
    it(`AZURE_API_VERSION=${version} reaches the right upstream path with the right deployment`, async () => {
      app = await startAppInProcess({ ...stack.env, UPSTREAM_TYPE: 'azure', AZURE_API_VERSION: version });
      stack.fake.clearRequests();
      const body = JSON.stringify({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(await chat(app.url, proxyKey, body), 200);
      const stream = JSON.stringify({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      assert.equal(await chat(app.url, proxyKey, stream), 200);
      const [first, second] = stack.fake.requests;
      assert.equal(first?.key, 'azure-key-1');
      assert.equal(first?.headers.authorization, undefined);
      if (version === 'v1') {
        assert.equal(first?.path, '/openai/v1/chat/completions');
        assert.equal(first?.body?.model, 'gpt-35-turbo');
        assert.equal(second?.path, '/openai/v1/chat/completions');
      } else {
        assert.equal(first?.path, '/openai/deployments/gpt-35-turbo/chat/completions');
        assert.equal(first?.query['api-version'], '2024-10-21');
        assert.equal(second?.path, '/openai/deployments/gpt-4o/chat/completions');
        assert.equal(second?.stream, true);
      }
      // The Responses API exists on Azure's v1 surface only, whatever the dated version.
      const responses = await fetch(`${app.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${proxyKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', input: 'hi' }),
      });
      assert.equal(responses.status, 200);
      const third = stack.fake.requests[2];
      assert.equal(third?.path, '/openai/v1/responses');
      assert.equal(third?.body?.model, 'gpt-4o');
      const models = await fetch(`${app.url}/v1/models`, {
        headers: { authorization: `Bearer ${proxyKey}` },
      });
      const ids = ((await models.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
      assert.deepEqual(ids, ['embed', 'gpt-3.5-turbo', 'gpt-4o'], 'served models, narrowed to the key’s');
      await app.stop();
      app = undefined;
    });
  }

  it('an api-version without stream_options: streams are not asked for usage, a client asking gets its 400', async () => {
    app = await startAppInProcess(
      { ...stack.env, UPSTREAM_TYPE: 'azure', AZURE_API_VERSION: '2024-06-01' },
      { usageFlushMs: 50 },
    );
    const { key, id } = await stack.issueKey({ models: ['gpt-4o'] });
    stack.fake.clearRequests();
    const stream = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true };
    const res = await openSse(`${app.url}/v1/chat/completions`, { authorization: `Bearer ${key}` }, stream);
    assert.equal(res.status, 200);
    assert.equal((await res.rest()).at(-1), 'data: [DONE]');
    assert.equal(stack.fake.requests[0]?.body?.stream_options, undefined);
    const [row] = await rowsOnceThere(stack, id, 1, 'row of the stream');
    assert.equal(row.status_code, 200);
    assert.equal(row.estimated, true, 'no usage reported: counted locally');
    // The client's own stream_options goes as sent: the version refuses it, the client is told.
    const own = { ...stream, stream_options: { include_usage: false } };
    assert.equal(await chat(app.url, key, JSON.stringify(own)), 400);
    assert.deepEqual(stack.fake.requests[1]?.body?.stream_options, { include_usage: false });
    await app.stop();
    app = undefined;
  });

  it('an Azure-style route serialises a stream body once; twice only for a version that refuses stream_options', async (t) => {
    // The route puts the path's model into the body; the client's body as it came is needed only
    // by an upstream that refuses to be asked for usage.
    for (const [version, serialised, streamOptions] of [
      ['2024-10-21', 1, { include_usage: true }],
      ['2024-06-01', 2, undefined],
    ] as const) {
      app = await startAppInProcess({ ...stack.env, UPSTREAM_TYPE: 'azure', AZURE_API_VERSION: version });
      stack.fake.clearRequests();
      const stringify = t.mock.method(JSON, 'stringify');
      try {
        const url = `${app.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`;
        const messages = [{ role: 'user', content: 'hi' }];
        const res = await openSse(url, { 'api-key': proxyKey }, { messages, stream: true });
        assert.equal(res.status, 200);
        assert.equal((await res.rest()).at(-1), 'data: [DONE]');
        const bodies = stringify.mock.calls.filter((call) => {
          const value = call.arguments[0] as { model?: unknown; messages?: unknown } | undefined;
          return value?.model === 'gpt-4o' && value.messages !== undefined;
        });
        assert.equal(
          bodies.length,
          serialised,
          `serialisations of the body with AZURE_API_VERSION=${version}`,
        );
      } finally {
        stringify.mock.restore();
      }
      const sent = stack.fake.requests[0]?.body;
      assert.equal(sent?.model, 'gpt-4o');
      assert.deepEqual(sent?.stream_options, streamOptions);
      await app.stop();
      app = undefined;
    }
  });

  it("the app's own Azure-style routes: each operation reaches its deployment, with an api-key", async () => {
    app = await startAppInProcess({ ...stack.env, UPSTREAM_TYPE: 'azure' });
    stack.fake.clearRequests();
    const azure = async (deployment: string, op: string, body: unknown, key?: string) => {
      const res = await fetch(`${app?.url}/openai/deployments/${deployment}/${op}?api-version=2024-10-21`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { 'api-key': key } : {}) },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
    };
    const chatBody = { messages: [{ role: 'user', content: 'hi' }] };
    // proxyKey may use gpt-3.5-turbo, the OpenAI spelling of the bare deployment gpt-35-turbo.
    assert.equal((await azure('gpt-35-turbo', 'chat/completions', chatBody, proxyKey)).status, 200);
    assert.equal((await azure('gpt-35-turbo', 'completions', { prompt: 'hi' }, proxyKey)).status, 200);
    assert.equal(
      (await azure('text-embedding-3-small', 'embeddings', { input: 'hi' }, proxyKey)).status,
      200,
    );
    assert.deepEqual(
      stack.fake.requests.map((r) => r.path),
      [
        '/openai/deployments/gpt-35-turbo/chat/completions',
        '/openai/deployments/gpt-35-turbo/completions',
        '/openai/deployments/text-embedding-3-small/embeddings',
      ],
    );
    assert.equal((await azure('gpt-35-turbo', 'chat/completions', chatBody)).status, 401);
    const other = (await stack.issueKey({ models: ['gpt-4o'] })).key;
    const refused = await azure('gpt-35-turbo', 'chat/completions', chatBody, other);
    assert.equal(refused.status, 404);
    assert.equal(refused.body.error?.code, 'model_not_found');
    await app.stop();
    app = undefined;
  });

  it('a model no Azure deployment serves is a 404', async () => {
    app = await startAppInProcess({ ...stack.env, UPSTREAM_TYPE: 'azure' });
    const other = (await stack.issueKey()).key;
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-5', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'model_not_found');
  });
});
