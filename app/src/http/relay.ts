import { once } from 'node:events';
import type { Context } from 'koa';
import type { ErrorBody } from '../errors.ts';
import { clientHeaders } from '../upstream/response-headers.ts';
import { SseBlocks } from './sse.ts';

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
 * Relays an upstream event stream to the client event by event, as each one completes, with
 * backpressure. If the upstream fails after the stream began, the client gets one error event
 * and the stream ends without [DONE]; if the client leaves, `abort` cancels the upstream at once.
 * Awaited by the route, so the request is not finished (or logged) until the stream is.
 */
export async function relayEventStream(
  ctx: Context,
  upstream: {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: AsyncIterable<Buffer> & { readableLength?: number };
  },
  abort: AbortController,
  filter: EventFilter = (events) => events,
): Promise<StreamOutcome> {
  const res = ctx.res;
  ctx.respond = false;
  res.statusCode = upstream.status;
  for (const [name, value] of Object.entries(clientHeaders(upstream.headers))) res.setHeader(name, value);
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache');
  res.setHeader('x-accel-buffering', 'no');
  // The headers go out with the first events when those have already arrived (one write, not
  // two); otherwise at once, so the client sees the answer begin while the model thinks.
  if (!((upstream.body.readableLength ?? 0) > 0)) res.flushHeaders();

  const blocks = new SseBlocks();
  const send = async (out: Buffer | string) => {
    if (out.length > 0 && !res.write(out)) await once(res, 'drain', { signal: abort.signal });
  };
  try {
    // The events a chunk completed go out together, in one write: each is still sent the moment
    // it is complete, without a socket write (and a system call) per event.
    for await (const chunk of upstream.body) {
      const events = blocks.push(chunk);
      if (events !== undefined) await send(filter(events));
    }
    const rest = blocks.end();
    if (rest !== undefined) await send(filter(Buffer.concat([rest, Buffer.from('\n\n')])));
    res.end();
    return { completed: true, clientGone: false };
  } catch {
    if (abort.signal.aborted || res.destroyed) {
      res.destroy();
      return { completed: false, clientGone: true };
    }
    res.end(`data: ${JSON.stringify(MID_STREAM_ERROR)}\n\n`);
    return { completed: false, clientGone: false };
  }
}
