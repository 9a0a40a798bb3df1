import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { AfterResponse, BATCH_DELAY_MS, BATCH_TASKS } from '../../app/src/http/after-response.ts';
import { edge } from '../../app/src/http/middleware/edge.ts';
import { createLogger } from '../../app/src/log/logger.ts';
import { createProxyMetrics } from '../../app/src/metrics/proxy-metrics.ts';
import { createRegistry } from '../../app/src/metrics/server.ts';

/** Resolves after the next turn of the event loop has run its immediates. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('AfterResponse', () => {
  it('runs a batch BATCH_DELAY_MS after its first task, in order, not before', async () => {
    const after = new AfterResponse(() => assert.fail('no task throws'));
    const seen: string[] = [];
    const queuedAt = performance.now();
    const ran = new Promise<number>((resolve) => {
      after.run(() => seen.push('first'));
      after.run(() => {
        seen.push('second');
        resolve(performance.now());
      });
    });
    await nextTurn();
    assert.deepEqual(seen, [], 'nothing runs in the next turn while the batch is small');
    const ranAt = await ran;
    assert.deepEqual(seen, ['first', 'second']);
    // Timers may fire up to a millisecond early by performance.now()'s clock.
    assert.ok(ranAt - queuedAt >= BATCH_DELAY_MS - 1, `ran after ${ranAt - queuedAt} ms`);
  });

  it('a full batch runs in the next turn, after promise continuations', async () => {
    const after = new AfterResponse(() => assert.fail('no task throws'));
    const seen: number[] = [];
    for (let i = 0; i < BATCH_TASKS; i++) after.run(() => seen.push(i));
    await Promise.resolve();
    assert.equal(seen.length, 0, 'not synchronously, nor before pending continuations');
    await nextTurn();
    assert.deepEqual(
      seen,
      Array.from({ length: BATCH_TASKS }, (_, i) => i),
    );
    after.run(() => seen.push(-1));
    await nextTurn();
    assert.equal(seen.length, BATCH_TASKS, 'the next task starts a new batch, which waits again');
    after.flush();
  });

  it('a task that throws is reported; the others still run', () => {
    const errors: unknown[] = [];
    const after = new AfterResponse((err) => errors.push(err));
    const seen: number[] = [];
    after.run(() => seen.push(1));
    after.run(() => {
      throw new Error('broken task');
    });
    after.run(() => seen.push(3));
    after.flush();
    assert.deepEqual(seen, [1, 3]);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['broken task'],
    );
  });

  it('flush runs what is queued at once (shutdown), and nothing runs twice', async () => {
    const after = new AfterResponse(() => {});
    let runs = 0;
    after.run(() => runs++);
    after.flush();
    assert.equal(runs, 1);
    await sleep(BATCH_DELAY_MS * 2);
    assert.equal(runs, 1, 'the batch timer was cleared');
    const again = new Promise<void>((resolve) =>
      after.run(() => {
        runs++;
        resolve();
      }),
    );
    await again;
    assert.equal(runs, 2, 'a task queued after a flush is scheduled again');
  });

  it('once closed (shutdown), runs what is queued and then each task at once', () => {
    const after = new AfterResponse(() => {});
    const seen: string[] = [];
    after.run(() => seen.push('queued'));
    after.close();
    assert.deepEqual(seen, ['queued']);
    after.run(() => seen.push('late'));
    assert.deepEqual(seen, ['queued', 'late'], 'a request that ends during shutdown is not batched');
  });
});

describe('the edge layer', () => {
  it('writes the response first, then the access line and the request metrics', async () => {
    const events: string[] = [];
    let lineWritten: () => void = () => {};
    const accessLine = new Promise<void>((resolve) => {
      lineWritten = resolve;
    });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        if (String(chunk).includes('"msg":"request"')) {
          events.push('access line');
          lineWritten();
        }
        cb();
      },
    });
    const logger = createLogger({ level: 'info', promptBody: false }, 'test', sink);
    const registry = createRegistry();
    const metrics = createProxyMetrics(registry);
    const after = new AfterResponse((err) => assert.fail(String(err)));
    const app = new Koa();
    app.use(
      edge({
        logger,
        secrets: [],
        logBodies: false,
        metrics,
        modelLabel: () => 'other',
        afterResponse: after,
      }),
    );
    app.use((ctx) => {
      ctx._matchedRoute = '/v1/x';
      ctx.body = { ok: true };
    });
    const handle = app.callback();
    const server = createServer((req, res) => {
      const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
      res.end = ((...args: unknown[]) => {
        events.push('response ended');
        return end(...args);
      }) as typeof res.end;
      void handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/x`);
      assert.deepEqual(await res.json(), { ok: true });
      await accessLine;
      assert.deepEqual(events, ['response ended', 'access line']);
      const text = await registry.metrics();
      assert.match(text, /gpt_proxy_requests_total\{route="\/v1\/x",status="200",model="other"\} 1/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
