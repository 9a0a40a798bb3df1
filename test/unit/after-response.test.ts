import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import Koa from 'koa';
import { AfterResponse } from '../../app/src/http/after-response.ts';
import { edge } from '../../app/src/http/middleware/edge.ts';
import { createLogger } from '../../app/src/log/logger.ts';
import { createProxyMetrics } from '../../app/src/metrics/proxy-metrics.ts';
import { createRegistry } from '../../app/src/metrics/server.ts';

describe('AfterResponse', () => {
  it('runs tasks in the next turn of the event loop, after promise continuations, in order', async () => {
    const after = new AfterResponse(() => assert.fail('no task throws'));
    const seen: string[] = [];
    after.run(() => seen.push('first'));
    after.run(() => seen.push('second'));
    await Promise.resolve();
    seen.push('microtask');
    assert.deepEqual(seen, ['microtask']);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['microtask', 'first', 'second']);
  });

  it('a task that throws is reported; the others still run', async () => {
    const errors: unknown[] = [];
    const after = new AfterResponse((err) => errors.push(err));
    const seen: number[] = [];
    after.run(() => seen.push(1));
    after.run(() => {
      throw new Error('broken task');
    });
    after.run(() => seen.push(3));
    await new Promise((resolve) => setImmediate(resolve));
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
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs, 1);
    after.run(() => runs++);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs, 2, 'a task queued after a flush is scheduled again');
  });
});

describe('the edge layer', () => {
  it('writes the response first, then the access line and the request metrics', async () => {
    const events: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        if (String(chunk).includes('"msg":"request"')) events.push('access line');
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
      assert.deepEqual(events, ['response ended', 'access line']);
      const text = await registry.metrics();
      assert.match(text, /gpt_proxy_requests_total\{route="\/v1\/x",status="200",model="other"\} 1/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
