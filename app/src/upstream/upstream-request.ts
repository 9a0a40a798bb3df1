import type { Dispatcher } from 'undici';

export interface UpstreamAnswer {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  /** The whole body; for a 2xx answer asked for with `streamSuccess`, the body as it arrives. */
  body: Buffer | UpstreamBody;
}

export interface UpstreamRequestOptions {
  /** A non-2xx body is kept up to this many bytes (the rest is read and dropped). */
  errorBodyLimit: number;
  /** Hand a 2xx body over as it arrives (an event stream) instead of reading it whole. */
  streamSuccess: boolean;
}

/**
 * One upstream request through undici's dispatch API: the same connection pools, timeouts and
 * errors as `request()`, without a body stream object per request. A JSON completion or an error
 * body is read whole (a few hundred bytes); a 2xx answer asked for with `streamSuccess` resolves
 * once its headers arrive, its body following in an {@link UpstreamBody}. Aborting `signal`
 * cancels the request (also mid-body) and rejects, or fails the body, with the signal's reason.
 */
export function requestUpstream(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: AbortSignal,
  o: UpstreamRequestOptions,
): Promise<UpstreamAnswer> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    // The handler below lives as long as the request: for a stream, minutes. Once the answer is
    // handed over it must not keep it, and a settled promise keeps its value for as long as its
    // resolving functions can be reached; so the handler reaches them only through `pending`.
    let pending: { resolve: (a: UpstreamAnswer) => void; reject: (e: unknown) => void } | undefined = {
      resolve,
      reject,
    };
    const answer = (a: UpstreamAnswer) => {
      pending?.resolve(a);
      pending = undefined;
    };
    const fail = (err: unknown) => {
      pending?.reject(err);
      pending = undefined;
    };
    const chunks: Buffer[] = [];
    let kept = 0;
    let limit = Number.POSITIVE_INFINITY;
    let statusCode = 0;
    let headers: UpstreamAnswer['headers'] = {};
    let controller: Dispatcher.DispatchController | undefined;
    let streamed: UpstreamBody | undefined;
    const onAbort = () => controller?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal.removeEventListener('abort', onAbort);
    dispatcher.dispatch(options, {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) c.abort(signal.reason);
      },
      onResponseStart(c, status, responseHeaders) {
        statusCode = status;
        // undici keeps the raw header buffers, views of the socket's read buffer, on the controller
        // for as long as the request lasts. The parsed headers are all we use.
        c.rawHeaders = null;
        if (status >= 200 && status < 300 && o.streamSuccess) {
          streamed = new UpstreamBody(c);
          answer({ statusCode, headers: responseHeaders, body: streamed });
          return;
        }
        headers = responseHeaders;
        if (status < 200 || status >= 300) limit = o.errorBodyLimit;
      },
      onResponseData(_c, chunk) {
        if (streamed !== undefined) {
          streamed.push(chunk);
          return;
        }
        if (kept >= limit) return;
        const part = kept + chunk.length > limit ? chunk.subarray(0, limit - kept) : chunk;
        chunks.push(part);
        kept += part.length;
      },
      onResponseEnd() {
        settle();
        if (streamed !== undefined) {
          streamed.finish();
          return;
        }
        answer({
          statusCode,
          headers,
          body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        });
      },
      onResponseError(_c, err) {
        settle();
        const reason: unknown = signal.aborted ? signal.reason : err;
        if (streamed !== undefined) streamed.fail(reason);
        else fail(reason);
      },
    });
  });
}

/** Where an {@link UpstreamBody} delivers: its chunks in order, then exactly one of end or error. */
export interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
  error(err: unknown): void;
}

/** Bytes kept for a body nobody reads yet before the upstream is paused. */
const WAITING_LIMIT = 64 * 1024;

/**
 * The body of a streamed upstream answer, delivered to one sink as undici parses it, with
 * pause/resume for backpressure. Chunks that arrive before the sink is attached wait (beyond
 * 64 KiB the upstream is paused until it is), so the consumer also learns whether the first
 * events came with the headers.
 */
export class UpstreamBody {
  readonly #controller: Dispatcher.DispatchController;
  #sink: BodySink | undefined;
  #waiting: Buffer[] = [];
  #waitingBytes = 0;
  #pausedUnread = false;
  #outcome: { error: unknown } | undefined;
  #onSettled: Array<() => void> = [];

  constructor(controller: Dispatcher.DispatchController) {
    this.#controller = controller;
  }

  /** Bytes that arrived and wait for the sink. */
  get waitingBytes(): number {
    return this.#waitingBytes;
  }

  /** Starts delivery to `sink`: what waited first, then the rest as it arrives. */
  attach(sink: BodySink): void {
    if (this.#sink !== undefined) throw new Error('the upstream body is already being read');
    this.#sink = sink;
    const waiting = this.#waiting;
    this.#waiting = [];
    this.#waitingBytes = 0;
    for (const chunk of waiting) sink.data(chunk);
    if (this.#outcome !== undefined) this.#deliver(this.#outcome);
    else if (this.#pausedUnread) {
      this.#pausedUnread = false;
      this.#controller.resume();
    }
  }

  /** Reads the whole body (a 2xx answer that turned out not to be a stream). */
  bytes(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      this.attach({ data: (c) => chunks.push(c), end: () => resolve(Buffer.concat(chunks)), error: reject });
    });
  }

  /** Stops reading from the upstream (the client is slower); chunks already parsed still come. */
  pause(): void {
    this.#controller.pause();
  }

  resume(): void {
    this.#controller.resume();
  }

  /** Cancels the upstream request (the reader gave up on the body); the sink gets `reason`. */
  cancel(reason: Error): void {
    this.#controller.abort(reason);
  }

  /** Calls `fn` once the body has ended or failed (at once if it has). */
  onSettled(fn: () => void): void {
    if (this.#outcome !== undefined) fn();
    else this.#onSettled.push(fn);
  }

  /** For the request: a parsed chunk. */
  push(chunk: Buffer): void {
    if (this.#sink !== undefined) {
      this.#sink.data(chunk);
      return;
    }
    this.#waiting.push(chunk);
    this.#waitingBytes += chunk.length;
    if (this.#waitingBytes > WAITING_LIMIT && !this.#pausedUnread) {
      this.#pausedUnread = true;
      this.#controller.pause();
    }
  }

  /** For the request: the body ended. */
  finish(): void {
    this.#settle({ error: undefined });
  }

  /** For the request: the body failed (a broken connection, a timeout, an abort). */
  fail(error: unknown): void {
    this.#settle({ error: error ?? new Error('the upstream body failed') });
  }

  #settle(outcome: { error: unknown }): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    if (this.#sink !== undefined) this.#deliver(outcome);
    for (const fn of this.#onSettled.splice(0)) fn();
  }

  #deliver(outcome: { error: unknown }): void {
    const sink = this.#sink as BodySink;
    if (outcome.error === undefined) sink.end();
    else sink.error(outcome.error);
  }
}
