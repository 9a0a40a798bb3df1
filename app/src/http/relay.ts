import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { ErrorBody } from '../errors.ts';
import type { UpstreamBody } from '../upstream/upstream-request.ts';
import { setHeaders } from './headers.ts';
import { LF2, SseBlocks } from './sse.ts';

export interface StreamOutcome {
  /** The upstream finished the stream. */
  completed: boolean;
  /** The client went away first (the upstream request was aborted). */
  clientGone: boolean;
}

/** Called with each block of complete events; returns what to send of it. */
export type EventFilter = (events: Buffer) => Buffer | string;

const MID_STREAM_ERROR: ErrorBody = {
  error: {
    message: 'The upstream connection failed while streaming; the response is incomplete.',
    type: 'server_error',
    param: null,
    code: 'upstream_error',
  },
};

/**
 * Follows the client for the route, from its first line: `abort` is aborted if the response closes
 * before it is finished (the client left; at once if it already has), which cancels the upstream
 * request. That also ends a relay paused for the client: the abort fails the upstream body
 * (UpstreamBody.fail), whose error reaches the relay's sink, paused or not. Returns the listener
 * to remove when the request is over. `reason`, if given, makes the abort's reason.
 */
export function followClient(
  res: ServerResponse,
  abort: AbortController,
  reason?: () => unknown,
): (() => void) | undefined {
  if (res.destroyed) {
    abort.abort(reason?.());
    return undefined;
  }
  const onClose = () => {
    if (!res.writableFinished) abort.abort(reason?.());
  };
  res.once('close', onClose);
  return onClose;
}

/**
 * Relays an upstream event stream to the client event by event, as each one completes, with
 * backpressure. If the upstream fails after the stream began, the client gets one error event
 * and the stream ends without [DONE]. A client that leaves is the route's to notice (see
 * followClient): the abort cancels the upstream, and its failed body ends the relay.
 * Awaited by the route, so the request is not finished (or logged) until the stream is.
 */
export function relayEventStream(
  ctx: Context,
  upstream: { status: number; clientHeaders: Readonly<Record<string, string>>; body: UpstreamBody },
  abort: AbortController,
  filter: EventFilter = (events) => events,
): Promise<StreamOutcome> {
  const res = ctx.res;
  ctx.respond = false;
  res.statusCode = upstream.status;
  setHeaders(ctx, upstream.clientHeaders);
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache');
  res.setHeader('x-accel-buffering', 'no');
  // The headers go out with the first events when those have already arrived (one write, not
  // two); otherwise at once, so the client sees the answer begin while the model thinks.
  if (upstream.body.waitingBytes === 0) res.flushHeaders();

  const body = upstream.body;
  const blocks = new SseBlocks();
  return new Promise((resolve) => {
    let arrived: Buffer[] = [];
    let ended = false;
    let failure: { error: unknown } | undefined;
    let ownFault = false;
    let scheduled = false;
    let finished = false;
    let draining = false;
    const resume = () => {
      draining = false;
      body.resume();
    };
    const finish = (outcome: StreamOutcome) => {
      finished = true;
      resolve(outcome);
    };
    // What one read of the upstream socket brought (undici parses it in one go, a chunk per
    // HTTP chunk) is forwarded together, after that read: the events it completed in one write,
    // and, when the stream ended in the same read, the end of the response in the same write.
    const forward = () => {
      scheduled = false;
      if (finished) return;
      if (res.destroyed) {
        // The client is gone (the route's abort may be what brought us here): a write would only
        // be buffered, and a paused upstream would wait for a 'drain' that never comes (undici's
        // body timeout does not run while paused), holding the request and its connection open.
        abort.abort();
        body.cancel(new Error('the client is gone'));
        return finish({ completed: false, clientGone: true });
      }
      let out: Buffer | string = '';
      try {
        const chunk = arrived.length === 1 ? (arrived[0] as Buffer) : Buffer.concat(arrived);
        arrived = [];
        const events = chunk.length > 0 ? blocks.push(chunk) : undefined;
        if (events !== undefined) out = filter(events);
        if (ended) {
          const rest = blocks.end();
          if (rest !== undefined) out = concat(out, filter(Buffer.concat([rest, LF2])));
        }
      } catch (error) {
        // Our own fault (the filter): the client is told as for an upstream failure, and the
        // upstream request, which may still be sending, is cancelled.
        ownFault = true;
        failure ??= { error };
      }
      if (failure !== undefined) {
        if (abort.signal.aborted || res.destroyed) {
          res.destroy();
          return finish({ completed: false, clientGone: true });
        }
        res.end(concat(out, `data: ${JSON.stringify(MID_STREAM_ERROR)}\n\n`));
        if (ownFault) body.cancel(new Error('the stream could not be relayed'));
        return finish({ completed: false, clientGone: false });
      }
      if (ended) {
        res.end(out);
        return finish({ completed: true, clientGone: false });
      }
      if (out.length > 0 && !res.write(out) && !draining) {
        draining = true;
        body.pause();
        res.once('drain', resume);
      }
    };
    const later = () => {
      if (scheduled) return;
      scheduled = true;
      queueMicrotask(forward);
    };
    body.attach({
      data(chunk) {
        arrived.push(chunk);
        later();
      },
      end() {
        ended = true;
        later();
      },
      error(error) {
        failure = { error };
        later();
      },
    });
  });
}

const concat = (a: Buffer | string, b: Buffer | string): Buffer | string =>
  a.length === 0 ? b : b.length === 0 ? a : Buffer.concat([Buffer.from(a), Buffer.from(b)]);
