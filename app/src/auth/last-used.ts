import type pg from 'pg';

/**
 * Records `last_used_at` for proxy keys off the hot path: ids are collected in memory and written
 * in one UPDATE per interval. A failed write keeps the ids for the next round.
 */
export class LastUsedRecorder {
  readonly #pool: pg.Pool;
  #pending = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #onError: (err: unknown) => void;
  #writing: Promise<void> | undefined;

  constructor(options: { pool: pg.Pool; intervalMs?: number; onError?: (err: unknown) => void }) {
    this.#pool = options.pool;
    this.#onError = options.onError ?? (() => {});
    this.#timer = setInterval(() => void this.flush(), options.intervalMs ?? 10_000);
    this.#timer.unref();
  }

  touch(keyId: number): void {
    this.#pending.add(keyId);
  }

  /**
   * Writes the ids collected so far. One write at a time: while Postgres is slow or not answering,
   * each interval would otherwise start one more UPDATE, each holding a pool connection that key
   * lookups need. A call during a write waits for it; ids touched meanwhile go in the next one.
   */
  flush(): Promise<void> {
    this.#writing ??= this.#write().finally(() => {
      this.#writing = undefined;
    });
    return this.#writing;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const ids = [...this.#pending];
    this.#pending = new Set();
    try {
      await this.#pool.query('UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1)', [ids]);
    } catch (err) {
      for (const id of ids) this.#pending.add(id);
      this.#onError(err);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    // A write in flight took only the ids of its time: the rest (and its own, should it fail) follow.
    await this.#writing;
    await this.flush();
  }
}
