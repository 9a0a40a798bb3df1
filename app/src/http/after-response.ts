/** How long a finished request's bookkeeping may wait for others to run with it. */
export const BATCH_DELAY_MS = 10;
/** Tasks (two per request) that are run at once, in the next turn, without waiting any longer. */
export const BATCH_TASKS = 64;

/**
 * Bookkeeping that must not hold a response back: the access line, the request metrics, the usage
 * row and the token settlement. A finished request queues it here, and its response goes out first.
 *
 * The queue runs in batches: 10 ms after its first task, or in the next turn of the event loop
 * (setImmediate, after the I/O that turn brought in) once it holds 64 tasks. At a steady rate a
 * turn of the loop brings one or two requests, and their bookkeeping, run on its own, finds the
 * processor's caches cold; a batch of them costs about a tenth less CPU per request at
 * 3,000 requests/s (bench/RESULTS.md). The cap bounds how long one batch holds the loop (about
 * half a millisecond) and how much it keeps alive.
 */
export class AfterResponse {
  #queue: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #closed = false;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Runs `task` after the response, with the batch it joins (at once, once closed). */
  run(task: () => void): void {
    this.#queue.push(task);
    if (this.#closed) this.flush();
    else if (this.#queue.length >= BATCH_TASKS) this.#immediate ??= setImmediate(this.flush);
    else this.#timer ??= setTimeout(this.flush, BATCH_DELAY_MS);
  }

  /**
   * On shutdown, before the usage buffer's last write: runs what is queued, and from then on each
   * task at once, so a request that ends while the other services close (one cut off when the drain
   * ran out of time) still has its row in that write rather than in a batch that would come too late.
   */
  close(): void {
    this.#closed = true;
    this.flush();
  }

  /** Runs every queued task now; one that throws is reported and the others still run. */
  readonly flush = (): void => {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    const tasks = this.#queue;
    this.#queue = [];
    for (const task of tasks) {
      try {
        task();
      } catch (err) {
        this.#onError(err);
      }
    }
  };
}
