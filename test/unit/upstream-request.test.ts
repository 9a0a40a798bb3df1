import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, type Dispatcher } from 'undici';
import { requestUpstream, type UpstreamBody } from '../../app/src/upstream/upstream-request.ts';

// A real HTTP server on loopback: /big sends 1 MiB at once, /small two chunks, /error a 429
// with a large body, /hang headers and one chunk, then nothing.
const MIB = 1024 * 1024;
let server: Server;
let origin: string;
const agent = new Agent();

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(MIB / 64, i));
      res.end();
    } else if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      res.end('data: 2\n\n');
    } else if (req.url === '/error') {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end(`{"error":{"message":"${'x'.repeat(10_000)}"}}`);
    } else {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await agent.close();
});

const get = (path: string, signal = new AbortController().signal, errorBodyLimit = 1024) =>
  requestUpstream(agent, { origin, path, method: 'GET' }, signal, { errorBodyLimit, streamSuccess: true });

function collect(body: UpstreamBody): Promise<{ data: Buffer; error?: unknown }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    body.attach({
      data: (c) => chunks.push(c),
      end: () => resolve({ data: Buffer.concat(chunks) }),
      error: (error) => resolve({ data: Buffer.concat(chunks), error }),
    });
  });
}

describe('requestUpstream', () => {
  it('a streamed 2xx body nobody reads yet pauses the upstream, then arrives whole and in order', async () => {
    const answer = await get('/big');
    const body = answer.body as UpstreamBody;
    let settled = false;
    body.onSettled(() => {
      settled = true;
    });
    await sleep(200);
    // The server wrote all of it at once; only about 64 KiB (plus what one socket read brought)
    // may wait in memory before the reading stops.
    assert.ok(body.waitingBytes > 0, 'the first chunks wait for the reader');
    assert.ok(
      body.waitingBytes < 512 * 1024,
      `${body.waitingBytes} bytes waited: the upstream was not paused`,
    );
    assert.equal(settled, false);
    const { data, error } = await collect(body);
    assert.equal(error, undefined);
    assert.equal(data.length, MIB);
    for (let i = 0; i < 64; i++) assert.equal(data[i * (MIB / 64)], i, `part ${i} out of order`);
    assert.equal(settled, true);
  });

  it('a body that ended before the reader came is delivered, then its end', async () => {
    const answer = await get('/small');
    await sleep(50);
    const { data, error } = await collect(answer.body as UpstreamBody);
    assert.equal(error, undefined);
    assert.equal(data.toString(), 'data: 1\n\ndata: 2\n\n');
  });

  it('a non-2xx body is read whole, up to the limit, even when streaming was asked for', async () => {
    const answer = await get('/error', undefined, 100);
    assert.equal(answer.statusCode, 429);
    assert.ok(Buffer.isBuffer(answer.body));
    assert.equal(answer.body.length, 100);
  });

  it('aborting mid-body fails the body with the reason and settles it', async () => {
    const abort = new AbortController();
    const answer = await get('/hang', abort.signal);
    const body = answer.body as UpstreamBody;
    const result = collect(body);
    let settled = false;
    body.onSettled(() => {
      settled = true;
    });
    await sleep(50);
    const reason = new Error('client left');
    abort.abort(reason);
    const { data, error } = await result;
    assert.equal(data.toString(), 'data: 1\n\n');
    assert.equal(error, reason);
    assert.equal(settled, true);
  });
  it('keeps the parsed headers and lets go of the raw header buffers a stream would hold', async () => {
    // undici keeps a response's raw header buffers (views of the socket's read buffer) on the
    // request's controller for as long as the request lasts; for a stream that is minutes, times
    // every open stream. A dispatcher in front of the agent shows what the controller keeps.
    let controller: Dispatcher.DispatchController | undefined;
    const watching = {
      dispatch: (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) =>
        agent.dispatch(options, {
          ...handler,
          onRequestStart(c, context) {
            controller = c;
            handler.onRequestStart?.(c, context);
          },
        }),
    } as Dispatcher;
    const answer = await requestUpstream(
      watching,
      { origin, path: '/hang', method: 'GET' },
      new AbortController().signal,
      {
        errorBodyLimit: 1024,
        streamSuccess: true,
      },
    );
    assert.equal(answer.headers['content-type'], 'text/event-stream');
    assert.ok(controller, 'the request started');
    assert.equal(controller.rawHeaders, null);
    (answer.body as UpstreamBody).cancel(new Error('done'));
  });
  it('keeps nothing of a streamed answer it handed over, for as long as the stream is open', async () => {
    // The handler lives as long as the request; a settled promise keeps its value while its
    // resolving functions can be reached. A weak reference shows whether the headers outlive the
    // caller's own use of them while the stream stays open.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Only the body and a weak reference leave this helper: nothing here holds the answer.
    const open = async () => {
      const answer = await get('/hang');
      return { body: answer.body as UpstreamBody, headers: new WeakRef(answer.headers) };
    };
    const { body, headers } = await open();
    let settled = false;
    body.onSettled(() => {
      settled = true;
    });
    for (let i = 0; i < 5 && headers.deref() !== undefined; i++) {
      await sleep(10);
      gc();
    }
    assert.equal(settled, false, 'the stream is still open');
    assert.equal(headers.deref(), undefined, 'the parsed headers were kept');
    body.cancel(new Error('done'));
  });
});
