/**
 * The total budget of one forwarded request: a signal aborted when the client goes away or when
 * `ms` have passed — what `AbortSignal.any([client, AbortSignal.timeout(ms)])` gives, but cheaper.
 * Its timer is cleared as soon as the request is over (`release`), whereas a timeout signal's
 * timer stays scheduled until a full garbage collection has found the signal unreachable (or `ms`
 * have passed): at thousands of requests per second that can be hundreds of thousands of live
 * timers and signals, on top of the composite signal's bookkeeping on every request.
 */
export class Deadline {
  readonly #controller = new AbortController();
  readonly #client: AbortSignal;
  readonly #timer: NodeJS.Timeout;
  readonly #endsAt: number;
  #expired = false;

  constructor(client: AbortSignal, ms: number) {
    this.#client = client;
    this.#endsAt = performance.now() + ms;
    if (client.aborted) this.#controller.abort(client.reason);
    else client.addEventListener('abort', this.#onClientAbort, { once: true });
    this.#timer = setTimeout(() => {
      this.#expired = true;
      this.#controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, ms);
    this.#timer.unref();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** What is left of the time budget, in ms. */
  get remainingMs(): number {
    return Math.max(0, this.#endsAt - performance.now());
  }

  /** The time budget ran out (as opposed to the client leaving). */
  get expired(): boolean {
    return this.#expired;
  }

  /**
   * Stops the clock but keeps following the client: a stream that began within the budget may
   * run as long as it keeps sending (undici's body timeout guards silence), and a client that
   * leaves still cancels it.
   */
  stopClock(): void {
    clearTimeout(this.#timer);
  }

  /** Stops the timer and stops following the client; call once the request is over (idempotent). */
  release(): void {
    clearTimeout(this.#timer);
    this.#client.removeEventListener('abort', this.#onClientAbort);
  }

  readonly #onClientAbort = (): void => {
    this.#controller.abort(this.#client.reason);
  };
}
