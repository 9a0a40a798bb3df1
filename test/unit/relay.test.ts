import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { Agent } from 'undici';
import { relayEventStream } from '../../app/src/http/relay.ts';
import { clientHeaders } from '../../app/src/upstream/response-headers.ts';
import { requestUpstream, type UpstreamBody } from '../../app/src/upstream/upstream-request.ts';

// A real upstream that sends one event and keeps the stream open, and a Koa app relaying it
// through a filter that fails: the relay's own fault.
let upstream: Server;
let app: Server;
let upstreamRequest: Promise<IncomingMessage>;
const agent = new Agent();
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

before(async () => {
  upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"n":1}\n\n');
  });
  upstreamRequest = once(upstream, 'request').then(([req]) => req as IncomingMessage);
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const koa = new Koa();
  koa.use(async (ctx) => {
    const abort = new AbortController();
    const answer = await requestUpstream(
      agent,
      { origin: url(upstream), path: '/', method: 'GET' },
      abort.signal,
      {
        errorBodyLimit: 1024,
        streamSuccess: true,
      },
    );
    const failing = () => {
      throw new Error('filter broke');
    };
    ctx.state.outcome = await relayEventStream(
      ctx,
      {
        status: answer.statusCode,
        clientHeaders: clientHeaders(answer.headers),
        body: answer.body as UpstreamBody,
      },
      abort,
      failing,
    );
  });
  app = koa.listen(0, '127.0.0.1');
  await once(app, 'listening');
});
after(async () => {
  for (const s of [app, upstream]) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await agent.close();
});

describe('relayEventStream', () => {
  it('a fault of its own ends the client stream with one error event and cancels the upstream', async () => {
    const res = await fetch(url(app));
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e !== '');
    assert.equal(events.length, 1, `expected only the error event, got: ${text}`);
    assert.equal(JSON.parse((events[0] as string).slice('data: '.length)).error.code, 'upstream_error');
    const req = await upstreamRequest;
    // The upstream never ends its stream: only the relay cancelling the request closes it.
    if (!req.socket.destroyed) await Promise.race([once(req.socket, 'close'), sleep(2_000)]);
    assert.ok(req.socket.destroyed, 'the upstream request was still open 2 s later');
  });
});
