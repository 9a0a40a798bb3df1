import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ANSWER } from '../fake-upstream/index.ts';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';
import { gate } from '../helpers/redis-gate.ts';
import { openSse } from '../helpers/sse-client.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { rowsOnceThere } from '../helpers/usage-rows.ts';

const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true };

describe('proxy: streaming', () => {
  let stack: TestStack;
  let app: InProcessApp;
  let auth: Record<string, string>;

  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-upstream-stream-1'] });
    app = await startAppInProcess(stack.env, { usageFlushMs: 50 });
    auth = { authorization: `Bearer ${(await stack.issueKey()).key}` };
  });
  after(async () => {
    await app?.stop();
    await stack?.destroy();
  });

  /** A stream request answered in JSON (an error): its status and error code. */
  async function postForError(): Promise<{ status: number; code: string }> {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(CHAT),
    });
    return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
  }

  for (const [name, path, body] of [
    ['chat', '/v1/chat/completions', CHAT],
    ['responses', '/v1/responses', { model: 'gpt-4o', input: 'hi', stream: true }],
  ] as const) {
    it(`${name}: the first event reaches the client while the upstream still holds the rest`, async () => {
      const latch = stack.fake.holdStreams();
      const res = await openSse(`${app.url}${path}`, auth, body);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      assert.equal(res.headers['x-accel-buffering'], 'no');
      const first = await res.next();
      assert.ok(first?.includes('data: '), 'first event arrived before release');
      await latch.waitForHeld(1);
      assert.equal(latch.released, false);
      latch.release();
      const rest = await res.rest();
      if (name === 'chat') assert.equal(rest.at(-1), 'data: [DONE]');
      else assert.match(rest.at(-1) ?? '', /^event: response\.completed/);
    });
  }

  it("a stream's time to first byte ends with its first events, its duration with the last", async () => {
    // The only test of this file on /v1/completions: its series hold this stream alone.
    const latch = stack.fake.holdStreams();
    const res = await openSse(`${app.url}/v1/completions`, auth, {
      model: 'gpt-4o',
      prompt: 'hi',
      stream: true,
    });
    await res.next();
    await latch.waitForHeld(1);
    await new Promise((resolve) => setTimeout(resolve, 600));
    latch.release();
    await res.rest();
    app.settle();
    const text = await app.registry.metrics();
    const series = (name: string, le: string) =>
      new RegExp(`${name}_bucket\\{le="${le}",route="/v1/completions",stream="true"\\} (\\d+)`).exec(
        text,
      )?.[1];
    assert.equal(series('gpt_proxy_time_to_first_byte_seconds', '0.5'), '1', text);
    assert.equal(series('gpt_proxy_request_duration_seconds', '0.5'), '0');
    assert.equal(series('gpt_proxy_request_duration_seconds', '1'), '1');
  });

  it('the client closing its connection aborts the upstream request at once', async () => {
    const latch = stack.fake.holdStreams();
    const res = await openSse(`${app.url}/v1/chat/completions`, auth, CHAT);
    await res.next();
    await latch.waitForHeld(1);
    const abortsBefore = stack.fake.requests.filter((r) => r.aborted).length;
    res.abort();
    const aborted = await stack.fake.waitForAbort(abortsBefore + 1);
    assert.equal(aborted.outcome, 'aborted');
    latch.release();
  });

  for (const stream of [true, false]) {
    it(`${stream ? 'a stream' : 'a JSON request'} whose client left while its rate limit was checked is not forwarded`, async () => {
      // A key of its own (60 rpm by default): every request asks Redis, whose call is held.
      const { key, id } = await stack.issueKey();
      const gcra = gate(app.redis, 'gpGcra');
      gcra.hold();
      const seen = stack.fake.requests.length;
      const req = request(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ ...CHAT, stream }));
      try {
        await waitFor(() => gcra.held === 1, { what: 'the rate-limit call held' });
        req.destroy();
        // Time for the proxy to see the connection close while it still waits for Redis.
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        gcra.release();
      }
      const [row] = await rowsOnceThere(stack, id, 1, 'row of the request whose client left');
      assert.equal(row.status_code, 499);
      assert.equal(row.error_code, 'client_closed');
      assert.equal(row.upstream_key_id, null, 'no upstream key was asked');
      assert.equal(row.total_tokens, 0);
      assert.equal(stack.fake.requests.length, seen, 'the upstream got no request');
      await waitFor(() => app.services.inFlight.count === 0, { what: 'no request left running' });
    });
  }

  it('an upstream failure mid-stream gives one error event and no [DONE]', async () => {
    stack.fake.setKeyBehavior(
      'sk-upstream-stream-1',
      { kind: 'fail_mid_stream', afterEvents: 2 },
      { times: 1 },
    );
    const res = await openSse(`${app.url}/v1/chat/completions`, auth, CHAT);
    assert.equal(res.status, 200);
    const events = await res.rest();
    const errors = events.filter((e) => e.includes('"error"'));
    assert.equal(errors.length, 1);
    assert.deepEqual(JSON.parse(errors[0]?.slice('data: '.length) ?? '{}').error.code, 'upstream_error');
    assert.equal(events.at(-1), errors[0]);
    assert.ok(!events.includes('data: [DONE]'));
    // A 200 to the request metrics, so counted apart: the only stream of this file broken off.
    await waitFor(
      async () =>
        /gpt_proxy_streams_interrupted_total\{route="\/v1\/chat\/completions"\} 1\n/.test(
          await app.registry.metrics(),
        ),
      { what: 'the interrupted stream counted' },
    );
    assert.match(
      await app.registry.metrics(),
      /gpt_proxy_streams_interrupted_total\{route="\/v1\/responses"\} 0\n/,
    );
  });

  const RESPONSES = { model: 'gpt-4o', input: 'hi', stream: true };
  for (const [name, path, body, behavior, last] of [
    [
      'chat (`data: {"error":…}`)',
      '/v1/chat/completions',
      CHAT,
      { kind: 'error_mid_stream' },
      /^data: \{"error":\{"message"/,
    ],
    [
      'responses (`error` event)',
      '/v1/responses',
      RESPONSES,
      { kind: 'error_mid_stream' },
      /^event: error\n/,
    ],
    [
      'responses (`response.failed`)',
      '/v1/responses',
      RESPONSES,
      { kind: 'error_mid_stream', as: 'failed' },
      /^event: response\.failed\n/,
    ],
  ] as const) {
    it(`${name}: an error the upstream reports inside the stream reaches the client; the row says upstream_error`, async () => {
      const { key, id } = await stack.issueKey({ rpm: 0 });
      stack.fake.setKeyBehavior('sk-upstream-stream-1', behavior, { times: 1 });
      const res = await openSse(`${app.url}${path}`, { authorization: `Bearer ${key}` }, body);
      assert.equal(res.status, 200);
      const events = await res.rest();
      assert.match(events.at(-1) ?? '', last);
      assert.match(
        events.at(-1) ?? '',
        /The server had an error while processing/,
        "the upstream's own event",
      );
      assert.ok(!events.includes('data: [DONE]'));
      const [row] = await rowsOnceThere(stack, id, 1, 'row of the stream that reported an error');
      assert.equal(row.status_code, 200);
      assert.equal(row.error_code, 'upstream_error');
    });
  }

  it('a JSON answer to a stream request that breaks off while read is a 502, not a 500', async () => {
    stack.fake.setKeyBehavior(
      'sk-upstream-stream-1',
      { kind: 'fail_mid_stream', asJson: true },
      { times: 1 },
    );
    assert.deepEqual(await postForError(), { status: 502, code: 'upstream_error' });
    assert.doesNotMatch(app.logText(), /unhandled error/);
  });

  it('an upstream that hangs up before the stream starts fails over or answers 502 in JSON', async () => {
    stack.fake.setKeyBehavior('sk-upstream-stream-1', 'reset', { times: 3 });
    assert.deepEqual(await postForError(), { status: 502, code: 'upstream_error' });
    stack.fake.clearKeyBehaviors();
  });

  it('a client that reads slowly gets every event, in order (the upstream is paused meanwhile)', async () => {
    // ~8 MB of events: more than the sockets buffer, so the relay must wait for the client.
    const answer = Array.from({ length: 40_000 }, (_, i) => `w${i}`).join(' ');
    stack.fake.setAnswer(answer);
    let upstreamWhileWaiting: string | undefined;
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const req = request(
          `${app.url}/v1/chat/completions`,
          { method: 'POST', headers: { ...auth, 'content-type': 'application/json' } },
          (res) => {
            res.pause();
            const chunks: Buffer[] = [];
            setTimeout(() => {
              upstreamWhileWaiting = stack.fake.requests.at(-1)?.outcome;
              res.on('data', (c: Buffer) => chunks.push(c)).resume();
            }, 1_000);
            res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
            res.once('error', reject);
          },
        );
        req.once('error', reject);
        req.end(JSON.stringify(CHAT));
      });
      const events = text.split('\n\n').filter((e) => e !== '');
      assert.equal(events.at(-1), 'data: [DONE]');
      const deltas = events
        .slice(0, -1)
        .map((e) => JSON.parse(e.slice('data: '.length)).choices[0]?.delta?.content ?? '')
        .join('');
      assert.equal(deltas.length, answer.length);
      assert.ok(deltas === answer, 'the streamed text is the answer, in order');
      // Had the proxy read on regardless, the upstream would have finished long before.
      assert.equal(upstreamWhileWaiting, 'pending', 'the upstream was still sending while the client waited');
    } finally {
      stack.fake.setAnswer(DEFAULT_ANSWER);
    }
  });
});
