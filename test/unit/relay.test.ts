import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { Agent } from 'undici';
import {
  type EventFilter,
  followClient,
  relayEventStream,
  type StreamOutcome,
} from '../../app/src/http/relay.ts';
import { clientHeaders } from '../../app/src/upstream/response-headers.ts';
import { requestUpstream, type UpstreamBody } from '../../app/src/upstream/upstream-request.ts';

// A real upstream that keeps its event stream open (`/one`: one event; `/flood`: events as fast
// as it may send them), and a Koa app relaying it with the client followed as the proxy route does
// (followClient, from the first line): a client that leaves is noticed through that abort, the
// relay's own fault only by the relay.
let upstream: Server;
let app: Server;
let upstreamRequests: IncomingMessage[] = [];
const outcomes: Array<Promise<StreamOutcome>> = [];
const agent = new Agent();
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
const EVENT = `data: {"text":"${'x'.repeat(1000)}"}\n\n`;

before(async () => {
  upstream = createServer((req, res) => {
    upstreamRequests.push(req);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (req.url === '/one') {
      res.write('data: {"n":1}\n\n');
      return;
    }
    const flood = () => {
      while (res.write(EVENT));
    };
    res.on('drain', flood);
    flood();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const koa = new Koa();
  koa.silent = true; // the reset connections of the leaving clients are expected
  koa.use(async (ctx) => {
    const [path, when] = ctx.path.split('/').slice(1);
    const abort = new AbortController();
    const onClose = followClient(ctx.res, abort);
    try {
      const answer = await requestUpstream(
        agent,
        { origin: url(upstream), path: `/${path}`, method: 'GET' },
        abort.signal,
        {
          errorBodyLimit: 1024,
          streamSuccess: true,
        },
      );
      // `gone-first`: the client leaves once the upstream answered, before the relay starts.
      if (when === 'gone-first' && !ctx.res.destroyed) await once(ctx.res, 'close');
      const failing: EventFilter = () => {
        throw new Error('filter broke');
      };
      const outcome = relayEventStream(
        ctx,
        {
          status: answer.statusCode,
          clientHeaders: clientHeaders(answer.headers),
          body: answer.body as UpstreamBody,
        },
        abort,
        when === 'failing' ? failing : undefined,
      );
      outcomes.push(outcome);
      await outcome;
    } finally {
      if (onClose) ctx.res.off('close', onClose);
    }
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

/** The upstream request the relay made, once it is closed (fails after 2 s: it stayed open). */
async function upstreamClosed(): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (upstreamRequests.length === 0 && Date.now() < deadline) await sleep(10);
  const req = upstreamRequests.at(-1) as IncomingMessage;
  // Not events.once: a reset socket emits 'error' before 'close'.
  const closed = new Promise((resolve) => req.socket.once('close', resolve));
  if (!req.socket.destroyed) await Promise.race([closed, sleep(deadline - Date.now())]);
  assert.ok(req.socket.destroyed, 'the upstream request was still open 2 s later');
}

describe('relayEventStream', () => {
  it('a fault of its own ends the client stream with one error event and cancels the upstream', async () => {
    upstreamRequests = [];
    const res = await fetch(`${url(app)}/one/failing`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e !== '');
    assert.equal(events.length, 1, `expected only the error event, got: ${text}`);
    assert.equal(JSON.parse((events[0] as string).slice('data: '.length)).error.code, 'upstream_error');
    // The upstream never ends its stream: only the relay cancelling the request closes it.
    await upstreamClosed();
  });

  it('a client gone before the relay starts: the upstream is cancelled, the outcome says so', async () => {
    upstreamRequests = [];
    const req = request(`${url(app)}/one/gone-first`);
    req.on('error', () => {});
    req.end();
    await once(req, 'socket');
    await sleep(50);
    req.destroy();
    await upstreamClosed();
    assert.deepEqual(await outcomes.at(-1), { completed: false, clientGone: true });
  });

  it('a client that leaves while the upstream is paused for it: the upstream is cancelled', async () => {
    upstreamRequests = [];
    const req = request(`${url(app)}/flood/slow`);
    req.on('error', () => {});
    req.end();
    // The client reads nothing: the sockets fill up and the relay pauses the upstream.
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.on('error', () => {}).pause();
    await sleep(300);
    req.destroy();
    await upstreamClosed();
    assert.deepEqual(await outcomes.at(-1), { completed: false, clientGone: true });
  });
});
