import type pg from 'pg';
import type { Dispatcher } from 'undici';
import { QUOTA_PROBE_INTERVAL_MS } from './key-transitions.ts';
import type { UpstreamPool } from './pool.ts';
import type { Provider, ProviderAdapter } from './types.ts';

export interface ProberOptions {
  db: pg.Pool;
  pool: UpstreamPool;
  adapters: Partial<Record<Provider, ProviderAdapter>>;
  dispatcher: Dispatcher;
  /** How often a disabled key is probed (and how often this instance looks for due keys). */
  intervalMs: number;
  onHealed?: (keyId: number) => void;
  onError?: (what: string, err: unknown) => void;
}

// Claims one due disabled key for this instance and pushes its next probe forward in the same
// statement, so across all instances each key is probed once per interval. Keys out of quota are
// probed once per quota interval ($2): listing models works even then.
const CLAIM = `
  UPDATE upstream_keys
     SET next_probe_at = now() + (CASE WHEN last_error LIKE '%insufficient_quota%' THEN $2::int ELSE $1::int END) * interval '1 millisecond'
   WHERE id = (SELECT id FROM upstream_keys
                WHERE status = 'disabled' AND coalesce(next_probe_at, '-infinity') <= now()
                ORDER BY next_probe_at NULLS FIRST LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id`;

// An admin's disable (next_probe_at 'infinity') made while the probe was under way wins over it.
const HEAL = `UPDATE upstream_keys SET status = 'active', failure_count = 0, last_error = NULL, cooldown_until = NULL,
                next_probe_at = NULL, updated_at = now()
              WHERE id = $1 AND status = 'disabled' AND next_probe_at IS DISTINCT FROM 'infinity'`;

/**
 * Heals disabled upstream keys: on a timer, claims due keys and probes each with the upstream's
 * cheap `GET /models`; a key that answers 2xx is active again for every instance.
 */
export class KeyProber {
  readonly #o: ProberOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: ProberOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Probes every key that is due now (at most a handful per tick). */
  async tick(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let i = 0; i < 8; i++) {
        const { rows } = await this.#o.db.query<{ id: number }>(CLAIM, [
          this.#o.intervalMs,
          QUOTA_PROBE_INTERVAL_MS,
        ]);
        const id = rows[0]?.id;
        if (id === undefined) break;
        await this.#probe(id);
      }
    } catch (err) {
      this.#o.onError?.('probe upstream keys', err);
    } finally {
      this.#running = false;
    }
  }

  async #probe(id: number): Promise<void> {
    const state = this.#o.pool.states.find((s) => s.key.id === id);
    const target =
      state && this.#o.adapters[state.key.provider]?.target('models', undefined, state.key, undefined);
    if (!state || !target) return;
    try {
      const res = await this.#o.dispatcher.request({
        origin: target.origin,
        path: target.path,
        method: 'GET',
        headers: { ...target.headers, accept: 'application/json', 'user-agent': 'gpt-proxy' },
        signal: AbortSignal.timeout(10_000),
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 300) return;
    } catch {
      return;
    }
    const healed = await this.#o.db.query(HEAL, [id]);
    if (healed.rowCount) {
      await this.#o.pool.refresh();
      this.#o.onHealed?.(id);
    }
  }
}
