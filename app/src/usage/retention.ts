import type pg from 'pg';

/**
 * Enforces USAGE_RETENTION_DAYS: deletes older usage rows at start and then hourly, in small
 * batches (one short transaction each) so the table is never locked for long.
 *
 * A run goes on until a batch comes back short: no fixed number of rounds, which at a high request
 * rate deleted less per hour than was written. Every replica runs it, at about the same times, so
 * each batch takes only rows no other run holds (FOR UPDATE SKIP LOCKED): the runs share the work
 * rather than wait on each other's row locks and then, finding those rows gone, stop early. A run
 * stops when no old row is left that another run is not deleting.
 */
export class UsageRetention {
  readonly #db: pg.Pool;
  readonly #days: number;
  readonly #batchSize: number;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(options: { db: pg.Pool; days: number; batchSize?: number; onError: (err: unknown) => void }) {
    this.#db = options.db;
    this.#days = options.days;
    this.#batchSize = options.batchSize ?? 5_000;
    this.#onError = options.onError;
  }

  start(intervalMs = 3_600_000): void {
    if (this.#days === 0) return;
    void this.run();
    this.#timer = setInterval(() => void this.run(), intervalMs);
    this.#timer.unref();
  }

  /** No run starts from now on, and one under way stops after its current batch. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /**
   * Deletes every row older than the retention; returns how many. One run at a time: a run still
   * going when the next is due (a large backlog) is the one that is waited for.
   */
  run(): Promise<number> {
    this.#running ??= this.#deleteAll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #deleteAll(): Promise<number> {
    let deleted = 0;
    try {
      while (!this.#stopped) {
        const result = await this.#db.query(
          `DELETE FROM usage_logs WHERE id IN (
             SELECT id FROM usage_logs WHERE created_at < now() - $1 * interval '1 day'
             LIMIT $2 FOR UPDATE SKIP LOCKED)`,
          [this.#days, this.#batchSize],
        );
        deleted += result.rowCount ?? 0;
        if ((result.rowCount ?? 0) < this.#batchSize) break;
      }
    } catch (err) {
      this.#onError(err);
    }
    return deleted;
  }
}
