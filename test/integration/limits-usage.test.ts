import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { shutdownBoundMs } from '../../app/src/shutdown-budget.ts';
import { type AppProcess, type InProcessApp, startApp, startAppInProcess } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';
import { openSse } from '../helpers/sse-client.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { rowsOnceThere, usageRows } from '../helpers/usage-rows.ts';

const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Tell me something.' }] };

async function post(url: string, key: string, body: unknown = CHAT, signal?: AbortSignal) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    signal,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    headers: res.headers,
    body: (await res.json()) as { error: { type: string; code: string; message: string } },
  };
}

/** A chat stream through `url` that the fake holds after its first event, which has arrived. */
async function heldStream(url: string, key: string, latch: { waitForHeld(n: number): Promise<unknown> }) {
  const res = await openSse(
    `${url}/v1/chat/completions`,
    { authorization: `Bearer ${key}` },
    { ...CHAT, stream: true },
  );
  await res.next();
  await latch.waitForHeld(1);
  return res;
}

/** Runs `test` against an app that writes usage rows every 50 ms; stops it, and resets the fake, after. */
async function withUsageApp(stack: TestStack, test: (app: InProcessApp) => Promise<void>): Promise<void> {
  const app = await startAppInProcess(stack.env, { usageFlushMs: 50 });
  try {
    await test(app);
  } finally {
    stack.fake.clearKeyBehaviors();
    await app.stop();
  }
}

describe('rate limits across replicas', () => {
  let stack: TestStack;
  let a: AppProcess;
  let b: AppProcess;

  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-limits-1'] });
    [a, b] = await Promise.all([startApp({ env: stack.env }), startApp({ env: stack.env })]);
  });
  after(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await stack?.destroy();
  });

  it('a key’s request limit holds across two instances, with OpenAI’s headers and a 429', async () => {
    const { key } = await stack.issueKey({ rpm: 5 });
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await post(i % 2 ? b.url : a.url, key));
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200, 200, 429, 429],
    );
    assert.deepEqual(
      results.slice(0, 5).map((r) => r.headers.get('x-ratelimit-remaining-requests')),
      ['4', '3', '2', '1', '0'],
    );
    const limited = results[5];
    assert.equal(limited?.headers.get('x-ratelimit-limit-requests'), '5');
    assert.equal(limited?.headers.get('retry-after'), '12');
    assert.match(limited?.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+s$|^1m0s$/);
    assert.deepEqual(limited?.body.error.type, 'requests');
    assert.deepEqual(limited?.body.error.code, 'rate_limit_exceeded');
    assert.equal(
      limited?.headers.get('x-ratelimit-limit-tokens'),
      null,
      'no token headers without a token limit',
    );
  });

  it('reserves tokens up front and settles them with the real usage', async () => {
    const { key } = await stack.issueKey({ rpm: 0, tpm: 1000 });
    const big = { ...CHAT, max_tokens: 600 };
    const first = await post(a.url, key, big);
    assert.equal(first.status, 200);
    assert.equal(
      first.headers.get('x-ratelimit-limit-requests'),
      null,
      'no request headers without a request limit',
    );
    const reservedLeft = Number(first.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(reservedLeft < 400, `600 completion tokens + the prompt were reserved (left ${reservedLeft})`);
    // The answer used a handful of tokens: the reservation is refunded, so the same request fits
    // again. Instance a spends the refund itself, or returns it to Redis once the key is idle there
    // for a second, when instance b sees it too.
    await waitFor(
      async () => {
        const r = await post(b.url, key, { ...CHAT, max_tokens: 1 });
        return Number(r.headers.get('x-ratelimit-remaining-tokens')) > 800;
      },
      { timeoutMs: 5_000, intervalMs: 250, what: 'reservation settled' },
    );
    assert.equal((await post(a.url, key, big)).status, 200);
    const tooBig = await post(a.url, key, { ...CHAT, max_tokens: 5000 });
    assert.equal(tooBig.status, 429);
    assert.equal(tooBig.body.error.type, 'tokens');
    assert.match(tooBig.body.error.message, /more than this key's limit of 1000 tokens per minute/);
  });

  it('scrapes metrics from a running instance, with the model label bounded', async () => {
    const { key } = await stack.issueKey({ rpm: 0 });
    await post(a.url, key);
    await post(a.url, key, { ...CHAT, model: 'invented-model-xyz' });
    // The request metrics are counted within 10 ms of the response (bookkeeping runs in batches).
    const invented =
      /gpt_proxy_requests_total\{route="\/v1\/chat\/completions",status="404",model="other"\} 1/;
    const text = await scrapeUntil(a.metricsPort, invented, 'the second request counted');
    assert.match(
      text,
      /gpt_proxy_requests_total\{route="\/v1\/chat\/completions",status="200",model="gpt-4o"\} \d+/,
    );
    assert.ok(!text.includes('invented-model-xyz'));
    assert.match(
      text,
      /gpt_proxy_request_duration_seconds_bucket\{le="0.05",route="\/v1\/chat\/completions",stream="false"\}/,
    );
    // Past the failover budget (a 504 at 330 s is not +Inf), and past it again for long streams.
    for (const le of ['330', '600']) {
      assert.match(
        text,
        new RegExp(`gpt_proxy_request_duration_seconds_bucket\\{le="${le}",route="/v1/chat/completions"`),
      );
    }
    assert.match(
      text,
      /gpt_proxy_time_to_first_byte_seconds_bucket\{le="330",route="\/v1\/chat\/completions",stream="false"\} [1-9]/,
    );
    assert.match(
      text,
      /gpt_proxy_time_to_first_byte_seconds_count\{route="\/v1\/chat\/completions",stream="false"\} [1-9]/,
    );
    assert.match(text, /gpt_proxy_upstream_keys\{provider="openai",state="active"\} 1/);
    assert.match(text, /gpt_proxy_ratelimit_rejections_total\{type="requests"\} \d+/);
    assert.match(text, /gpt_proxy_tokens_total\{model="gpt-4o",key_id="\d+",kind="prompt"\} \d+/);
    assert.match(text, /gpt_proxy_usage_buffer_rows \d+/);
    assert.match(text, /gpt_proxy_usage_rows_dropped_total 0/);
    assert.match(text, /gpt_proxy_ratelimit_fail_open_total 0/);
    assert.equal((await fetch(`${a.url}/metrics`)).status, 404, 'metrics are not on the API port');
  });

  it('a request the rate limit refuses is counted with its model and stream flag', async () => {
    const { key } = await stack.issueKey({ rpm: 1 });
    assert.equal((await post(a.url, key)).status, 200);
    const limited = await fetch(`${a.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...CHAT, stream: true }),
    });
    assert.equal(limited.status, 429);
    await limited.arrayBuffer();
    // The only stream request of these tests: refused, yet counted as a stream.
    const stream =
      /gpt_proxy_request_duration_seconds_count\{route="\/v1\/chat\/completions",stream="true"\} 1\n/;
    const text = await scrapeUntil(a.metricsPort, stream, 'the refused stream counted');
    assert.match(
      text,
      /gpt_proxy_requests_total\{route="\/v1\/chat\/completions",status="429",model="gpt-4o"\} \d+/,
    );
    assert.doesNotMatch(text, /status="429",model="none"/);
  });
});

describe('usage accounting', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-usage-1'] });
  });
  after(async () => {
    await stack?.destroy();
  });

  it('one exact row per request, stream and non-stream; the usage chunk only when asked for', async () => {
    await withUsageApp(stack, async (app) => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
      const plain = await client.chat.completions.create(
        CHAT as OpenAI.ChatCompletionCreateParamsNonStreaming,
      );
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const c of await client.chat.completions.create({
        ...CHAT,
        stream: true,
      } as OpenAI.ChatCompletionCreateParamsStreaming))
        chunks.push(c);
      assert.ok(
        chunks.every((c) => !c.usage),
        'the client did not ask for usage and sees none',
      );
      const asked: OpenAI.ChatCompletionChunk[] = [];
      for await (const c of await client.chat.completions.create({
        ...CHAT,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.ChatCompletionCreateParamsStreaming))
        asked.push(c);
      const usageChunk = asked.at(-1);
      assert.equal(usageChunk?.choices.length, 0);
      assert.ok(usageChunk?.usage);
      // Upstream requests asked for usage in both streams.
      const upstreamStreams = stack.fake.requests.filter((r) => r.stream);
      assert.ok(
        upstreamStreams.every(
          (r) => (r.body?.stream_options as { include_usage?: boolean })?.include_usage === true,
        ),
      );
      const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'abc' });
      const resp = await client.responses.create({ model: 'gpt-4o', input: 'hi' });
      let respUsage: { input_tokens: number; output_tokens: number } | undefined;
      for await (const e of await client.responses.create({ model: 'gpt-4o', input: 'hi', stream: true })) {
        if (e.type === 'response.completed') respUsage = e.response.usage ?? undefined;
      }
      const bad = await post(app.url, key, { ...CHAT, model: 'no-such-model' });
      assert.equal(bad.status, 404);

      const rows = await rowsOnceThere(stack, id, 7, '7 usage rows');
      const u = usageChunk?.usage;
      assert.deepEqual(
        rows.map((r) => [
          r.route,
          r.stream,
          r.status_code,
          r.prompt_tokens,
          r.completion_tokens,
          r.total_tokens,
          r.estimated,
        ]),
        [
          [
            '/v1/chat/completions',
            false,
            200,
            plain.usage?.prompt_tokens,
            plain.usage?.completion_tokens,
            plain.usage?.total_tokens,
            false,
          ],
          ['/v1/chat/completions', true, 200, u?.prompt_tokens, u?.completion_tokens, u?.total_tokens, false],
          ['/v1/chat/completions', true, 200, u?.prompt_tokens, u?.completion_tokens, u?.total_tokens, false],
          ['/v1/embeddings', false, 200, emb.usage.prompt_tokens, 0, emb.usage.total_tokens, false],
          [
            '/v1/responses',
            false,
            200,
            resp.usage?.input_tokens,
            resp.usage?.output_tokens,
            resp.usage?.total_tokens,
            false,
          ],
          [
            '/v1/responses',
            true,
            200,
            respUsage?.input_tokens,
            respUsage?.output_tokens,
            (respUsage?.input_tokens ?? 0) + (respUsage?.output_tokens ?? 0),
            false,
          ],
          ['/v1/chat/completions', false, 404, 0, 0, 0, false],
        ],
      );
      assert.ok(rows.every((r) => /^[0-9a-f]{32}$/.test(r.request_id)));
    });
  });

  it('a stream the client cut off is recorded, estimated', async () => {
    await withUsageApp(stack, async (app) => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      const latch = stack.fake.holdStreams();
      try {
        const res = await heldStream(app.url, key, latch);
        res.abort();
        const [row] = await rowsOnceThere(stack, id, 1, 'row of aborted stream');
        assert.equal(row.status_code, 499);
        assert.equal(row.error_code, 'client_closed');
        assert.equal(row.estimated, true);
        assert.ok(row.prompt_tokens > 0);
      } finally {
        latch.release();
      }
    });
  });

  it('a client gone before the answer: 499, and the prompt the upstream read is charged, estimated', async () => {
    await withUsageApp(stack, async (app) => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      stack.fake.setKeyBehavior('sk-usage-1', { kind: 'slow_first_byte', ms: 5_000 }, { times: 1 });
      const seen = stack.fake.requests.length;
      const gone = new AbortController();
      const call = post(app.url, key, CHAT, gone.signal).catch(() => undefined);
      await stack.fake.waitForRequests(seen + 1);
      gone.abort();
      await call;
      const [row] = await rowsOnceThere(stack, id, 1, 'row of the abandoned request');
      assert.equal(row.status_code, 499);
      assert.equal(row.error_code, 'client_closed');
      assert.equal(row.estimated, true);
      assert.ok(row.prompt_tokens > 0 && row.completion_tokens === 0);
      assert.notEqual(row.upstream_key_id, null);
    });
  });

  it('a client gone while sending its body: 499, nothing charged, no error logged', async () => {
    await withUsageApp(stack, async (app) => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      const { hostname, port } = new URL(app.url);
      const socket = connect(Number(port), hostname);
      await once(socket, 'connect');
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${key}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":',
      );
      // Time for the proxy to read the headers and start on the body (nothing to wait on: no answer comes).
      await sleep(200);
      socket.destroy();
      const [row] = await rowsOnceThere(stack, id, 1, 'row of the abandoned upload');
      assert.equal(row.status_code, 499);
      assert.equal(row.error_code, 'client_closed');
      assert.equal(row.total_tokens, 0);
      assert.equal(row.upstream_key_id, null);
      assert.doesNotMatch(app.logText(), /unhandled error/);
    });
  });

  it('a stream the upstream broke off is recorded as a failure', async () => {
    await withUsageApp(stack, async (app) => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      stack.fake.setKeyBehavior('sk-usage-1', { kind: 'fail_mid_stream', afterEvents: 2 }, { times: 1 });
      const res = await openSse(
        `${app.url}/v1/chat/completions`,
        { authorization: `Bearer ${key}` },
        { ...CHAT, stream: true },
      );
      assert.equal(res.status, 200);
      await res.rest();
      const [row] = await rowsOnceThere(stack, id, 1, 'row of the broken stream');
      assert.equal(row.status_code, 200);
      assert.equal(row.error_code, 'upstream_error');
      assert.equal(row.estimated, true);
    });
  });

  it('a model name with a NUL in it is recorded, and the rows after it still arrive', async () => {
    await withUsageApp(stack, async (app) => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      const odd = await post(app.url, key, { ...CHAT, model: 'gpt-4o\u0000x' });
      assert.equal(odd.status, 404);
      assert.equal(odd.body.error.code, 'model_not_found');
      assert.equal((await post(app.url, key)).status, 200);
      const rows = await rowsOnceThere(stack, id, 2, 'both rows');
      assert.deepEqual(
        rows.map((r) => [r.model, r.status_code]).sort((a, b) => a[1] - b[1]),
        [
          ['gpt-4o', 200],
          ['gpt-4o\uFFFDx', 404],
        ],
      );
    });
  });
  it('Postgres stopped mid-load and started again: every row arrives', async () => {
    const app = await startAppInProcess(stack.env, { usageFlushMs: 50, authTtlMs: 1_000 });
    try {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      assert.equal((await post(app.url, key)).status, 200);
      await stack.pg.stop();
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) statuses.push((await post(app.url, key)).status);
      assert.deepEqual(new Set(statuses), new Set([200]), 'served from memory while Postgres is down');
      app.settle();
      assert.ok(app.services.usage.buffered >= 25);
      await new Promise((r) => setTimeout(r, 300));
      await stack.pg.start();
      await waitFor(async () => (await usageRows(stack, id)).length === 26, {
        timeoutMs: 40_000,
        intervalMs: 250,
        what: '26 rows',
      });
      assert.equal(app.services.usage.buffered, 0);
      assert.match(app.logText(), /usage rows not written yet; will retry/);
      const text = await app.registry.metrics();
      assert.match(text, /gpt_proxy_usage_rows_dropped_total 0/);
      assert.match(text, /gpt_proxy_usage_write_failures_total [1-9]/);
    } finally {
      await app.stop();
    }
  });

  it('USAGE_RETENTION_DAYS deletes old rows', async () => {
    await stack.db.query(
      `INSERT INTO usage_logs (id, request_id, route, status_code, latency_ms, created_at)
       VALUES (gen_random_uuid(), 'old', '/v1/x', 200, 1, now() - interval '10 days'),
              (gen_random_uuid(), 'new', '/v1/x', 200, 1, now() - interval '1 day')`,
    );
    const app = await startAppInProcess({ ...stack.env, USAGE_RETENTION_DAYS: '7' });
    try {
      await waitFor(
        async () =>
          (await stack.db.query("SELECT 1 FROM usage_logs WHERE request_id = 'old'")).rowCount === 0,
        {
          timeoutMs: 3_000,
          what: 'old row deleted',
        },
      );
      assert.equal((await stack.db.query("SELECT 1 FROM usage_logs WHERE request_id = 'new'")).rowCount, 1);
    } finally {
      await app.stop();
    }
  });

  it('Redis unreachable: RATE_LIMIT_FAIL_OPEN=true serves and counts, false answers 503', async () => {
    const open = await startAppInProcess(stack.env);
    const closed = await startAppInProcess({ ...stack.env, RATE_LIMIT_FAIL_OPEN: 'false' });
    try {
      const { key } = await stack.issueKey({ rpm: 10 });
      await stack.redis.stop();
      assert.equal((await post(open.url, key)).status, 200);
      const refused = await post(closed.url, key);
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error.code, 'upstream_unavailable');
      assert.match(await open.registry.metrics(), /gpt_proxy_ratelimit_fail_open_total 1/);
      assert.match(open.logText(), /rate limiter cannot reach redis/);
    } finally {
      await stack.redis.start();
      await Promise.all([open.stop(), closed.stop()]);
    }
  });
});

describe('graceful shutdown', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-drain-1'] });
  });
  after(async () => {
    await stack?.destroy();
  });

  it('SIGTERM mid-stream: the stream completes, the row is flushed, exit 0', async () => {
    const app = await startApp({ env: stack.env });
    const { key, id } = await stack.issueKey({ rpm: 0 });
    const latch = stack.fake.holdStreams();
    const res = await heldStream(app.url, key, latch);
    process.kill(app.pid, 'SIGTERM');
    await waitFor(() => /"draining"/.test(app.process.output()), { timeoutMs: 5_000, what: 'draining' });
    // New connections are refused while the open stream goes on.
    await assert.rejects(fetch(`${app.url}/health/live`));
    latch.release();
    const rest = await res.rest();
    assert.equal(rest.at(-1), 'data: [DONE]');
    const exit = await app.process.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    const rows = await usageRows(stack, id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].estimated, false);
  });

  it('SIGTERM, and a stream still open at the end of the grace: cut, its 499 row written, exit 0', async () => {
    const app = await startApp({ env: { ...stack.env, SHUTDOWN_GRACE_SECONDS: '1' } });
    const { key, id } = await stack.issueKey({ rpm: 0 });
    const latch = stack.fake.holdStreams();
    try {
      const res = await heldStream(app.url, key, latch);
      // Past the key's last-use write (every 10 s), as for any long stream: with that write still
      // pending, the close would wait for it long enough to hide a cut request's row coming late.
      await new Promise((r) => setTimeout(r, 11_000));
      process.kill(app.pid, 'SIGTERM');
      // The upstream never finishes: the drain cuts the stream once the second is over.
      await res.rest();
      const exit = await app.process.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, app.process.output());
      const rows = await usageRows(stack, id);
      assert.deepEqual(
        rows.map((r) => [r.status_code, r.estimated]),
        [[499, true]],
        app.process.output(),
      );
    } finally {
      latch.release();
      await app.stop();
    }
  });

  it('SIGTERM while Postgres does not answer: the unwritten rows are logged and the process exits in time', async () => {
    const app = await startApp({ env: { ...stack.env, SHUTDOWN_GRACE_SECONDS: '1' } });
    const { key } = await stack.issueKey({ rpm: 0 });
    // A real Postgres that stops answering mid-INSERT: another session holds the table locked.
    const locker = await stack.db.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE usage_logs IN ACCESS EXCLUSIVE MODE');
    try {
      assert.equal((await post(app.url, key)).status, 200);
      process.kill(app.pid, 'SIGTERM');
      const started = performance.now();
      // The metrics listener closes last: a scrape until the exit sees the row the final write lost.
      const scrape = () =>
        fetch(`http://127.0.0.1:${app.metricsPort}/metrics`).then(
          (res) => res.text(),
          () => '',
        );
      await sleep(1_000); // in the final write, which waits on the lock
      assert.match(
        await scrape(),
        /gpt_proxy_usage_rows_dropped_total 0\n/,
        'scraped during the final write',
      );
      await waitFor(async () => /gpt_proxy_usage_rows_dropped_total 1\n/.test(await scrape()), {
        timeoutMs: 15_000,
        intervalMs: 100,
        what: 'the lost row counted in a scrape before the exit',
      });
      const exit = await Promise.race([app.process.exited, sleep(20_000).then(() => 'still running')]);
      const seconds = (performance.now() - started) / 1000;
      assert.deepEqual(exit, { code: 0, signal: null }, app.process.output());
      assert.ok(seconds * 1000 < shutdownBoundMs(1_000), `exited after ${seconds.toFixed(1)} s`);
      assert.match(app.process.output(), /"unwritten":1,.*usage rows could not be written before exit/);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
      await app.stop();
    }
  });
});

/** The metrics page once it matches `pattern` (request metrics are counted in batches, within 10 ms). */
function scrapeUntil(metricsPort: number, pattern: RegExp, what: string): Promise<string> {
  return waitFor(
    async () => {
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return pattern.test(body) ? body : undefined;
    },
    { timeoutMs: 5_000, what },
  );
}
