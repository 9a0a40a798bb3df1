/**
 * Bookkeeping that must not hold a response back: the access line, the request metrics, the usage
 * row and the token settlement. A finished request queues it here, and its response goes out first.
 * The queue runs once per turn of the event loop (setImmediate), after the I/O that turn brought in.
 * Under load, a response then waits only for the work that answers the requests ahead of it, not
 * for their bookkeeping as well. The bookkeeping still runs in the same turn, so the queue never
 * grows beyond one turn's requests. `flush` runs what is queued at once (on shutdown, before the
 * usage buffer's last write).
 */
export class AfterResponse {
  #queue: Array<() => void> = [];
  #scheduled = false;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Runs `task` after the responses of this turn are written. */
  run(task: () => void): void {
    this.#queue.push(task);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.flush);
  }

  /** Runs every queued task now; one that throws is reported and the others still run. */
  readonly flush = (): void => {
    this.#scheduled = false;
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
