import type pg from 'pg';

/**
 * Enforces USAGE_RETENTION_DAYS: deletes older usage rows at start and then hourly, in small
 * batches so the table is never locked for long. Every instance may run it; deleting the same
 * old rows twice is harmless.
 */
export class UsageRetention {
  readonly #db: pg.Pool;
  readonly #days: number;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { db: pg.Pool; days: number; onError: (err: unknown) => void }) {
    this.#db = options.db;
    this.#days = options.days;
    this.#onError = options.onError;
  }

  start(intervalMs = 3_600_000): void {
    if (this.#days === 0) return;
    void this.run();
    this.#timer = setInterval(() => void this.run(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Deletes every row older than the retention; returns how many. */
  async run(): Promise<number> {
    let deleted = 0;
    try {
      for (let round = 0; round < 1_000; round++) {
        const result = await this.#db.query(
          `DELETE FROM usage_logs WHERE id IN (
             SELECT id FROM usage_logs WHERE created_at < now() - $1 * interval '1 day' LIMIT 5000)`,
          [this.#days],
        );
        deleted += result.rowCount ?? 0;
        if ((result.rowCount ?? 0) < 5000) break;
      }
    } catch (err) {
      this.#onError(err);
    }
    return deleted;
  }
}
