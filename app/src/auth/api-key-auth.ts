import type pg from 'pg';
import { apiKeyDigest, looksLikeApiKey } from '../crypto/api-keys.ts';
import { bounded } from '../db/pool.ts';

/**
 * A lookup by a unique index answers in milliseconds; one unanswered this long means
 * Postgres is not answering, and the caller is better served by the stale fallback (or a 503) now
 * than by the pool's general bound.
 */
const LOOKUP_TIMEOUT_MS = 3_000;

/** What the rest of the request needs to know about a valid proxy key. */
export interface ApiKeyIdentity {
  id: number;
  userId: number;
  isAdmin: boolean;
  /** Per-key limits; null means the defaults (RATE_LIMIT_RPM / RATE_LIMIT_TPM) apply. */
  rpm: number | null;
  tpm: number | null;
  /** Model names (a trailing `*` matches a prefix); null allows every model. */
  allowedModels: readonly string[] | null;
}

export type AuthResult =
  | { valid: true; key: ApiKeyIdentity }
  | { valid: false; reason: 'unknown' | 'revoked' | 'expired' | 'user_disabled' };

interface KeyRow {
  id: number;
  user_id: number;
  is_admin: boolean;
  user_disabled: boolean;
  status: string;
  rpm: number | null;
  tpm: number | null;
  allowed_models: string[] | null;
  expires_at: Date | null;
}

interface CacheEntry {
  row: KeyRow | null;
  fetchedAt: number;
}

export interface ApiKeyAuthOptions {
  pool: pg.Pool;
  /** How long a lookup is trusted; revocation takes effect everywhere within this time. */
  ttlMs?: number;
  /** How old a cached lookup may be and still be used while Postgres is unreachable. */
  staleMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * Looks proxy keys up by SHA-256, with a short in-process cache so the hot path does not query
 * Postgres on every request. Unknown keys are cached too (a flood of bad keys costs one query
 * each per TTL). Expiry is judged at each call, not at caching time. Expected outcomes are
 * values; only a database failure throws.
 */
export class ApiKeyAuthenticator {
  readonly #pool: pg.Pool;
  readonly #ttlMs: number;
  readonly #staleMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<KeyRow | null>>();
  /**
   * Bumped by invalidate(). A lookup started before the bump may have read the row before the
   * change; it answers its own callers but neither caches its row nor falls back to the entry the
   * change made obsolete, or a key revoked here would work on until the TTL ran out.
   */
  #generation = 0;

  constructor(options: ApiKeyAuthOptions) {
    this.#pool = options.pool;
    this.#ttlMs = options.ttlMs ?? 4_000;
    this.#staleMs = options.staleMs ?? 15 * 60_000;
    this.#maxEntries = options.maxEntries ?? 50_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The result when no query is needed: a string that is no key of ours, or a lookup cached
   * within the TTL. Undefined otherwise: ask `authenticate`. Nearly every request of a key in
   * use ends here, without a promise to wait for.
   */
  authenticateCached(presented: string): AuthResult | undefined {
    if (!looksLikeApiKey(presented)) return { valid: false, reason: 'unknown' };
    const cached = this.#cache.get(apiKeyDigest(presented));
    if (cached === undefined || this.#now() - cached.fetchedAt >= this.#ttlMs) return undefined;
    return this.#judge(cached.row);
  }

  async authenticate(presented: string): Promise<AuthResult> {
    if (!looksLikeApiKey(presented)) return { valid: false, reason: 'unknown' };
    return this.#judge(await this.#lookup(apiKeyDigest(presented)));
  }

  /** What a looked-up row means now (expiry is judged at each call, not at caching time). */
  #judge(row: KeyRow | null): AuthResult {
    if (!row) return { valid: false, reason: 'unknown' };
    if (row.status !== 'active') return { valid: false, reason: 'revoked' };
    if (row.user_disabled) return { valid: false, reason: 'user_disabled' };
    if (row.expires_at && row.expires_at.getTime() <= this.#now()) return { valid: false, reason: 'expired' };
    return {
      valid: true,
      key: {
        id: row.id,
        userId: row.user_id,
        isAdmin: row.is_admin,
        rpm: row.rpm,
        tpm: row.tpm,
        allowedModels: row.allowed_models,
      },
    };
  }

  /** Drops every cached lookup (used after an admin change on this instance). */
  invalidate(): void {
    this.#generation++;
    this.#cache.clear();
    // Callers from now on must not join a lookup that may have read the row before the change.
    this.#inflight.clear();
  }

  async #lookup(hex: string): Promise<KeyRow | null> {
    const cached = this.#cache.get(hex);
    if (cached && this.#now() - cached.fetchedAt < this.#ttlMs) return cached.row;
    const pending = this.#inflight.get(hex);
    if (pending) return pending;
    const generation = this.#generation;
    // The row is as of the query's start (or later), so its TTL counts from there.
    const startedAt = this.#now();
    const current = () => generation === this.#generation;
    const query: Promise<KeyRow | null> = this.#query(Buffer.from(hex, 'hex'))
      .then(
        (row) => {
          if (!current()) return row;
          if (this.#cache.size >= this.#maxEntries)
            this.#cache.delete(this.#cache.keys().next().value as string);
          this.#cache.delete(hex);
          this.#cache.set(hex, { row, fetchedAt: startedAt });
          return row;
        },
        (err: unknown) => {
          // This replica cannot reach Postgres (an outage, or its pool exhausted): keep serving keys
          // seen recently rather than refuse everyone. A revocation made through another replica
          // takes effect here once Postgres answers again (README: revocation). The entry is not
          // renewed, and one made obsolete by a change on this instance is never used.
          if (current() && cached && this.#now() - cached.fetchedAt < this.#staleMs) return cached.row;
          throw err;
        },
      )
      .finally(() => {
        // After invalidate() a newer lookup of the same key may hold the slot.
        if (this.#inflight.get(hex) === query) this.#inflight.delete(hex);
      });
    this.#inflight.set(hex, query);
    return query;
  }

  async #query(hash: Buffer): Promise<KeyRow | null> {
    const { rows } = await this.#pool.query<KeyRow>(
      bounded(
        `SELECT k.id, k.user_id, u.is_admin, u.disabled AS user_disabled, k.status, k.rpm, k.tpm,
                k.allowed_models, k.expires_at
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1`,
        [hash],
        LOOKUP_TIMEOUT_MS,
      ),
    );
    return rows[0] ?? null;
  }
}

/** Whether a key may use `model`: exact names, or a prefix when the allowed entry ends in `*`. */
export function mayUseModel(key: ApiKeyIdentity, model: string): boolean {
  if (key.allowedModels === null) return true;
  return key.allowedModels.some((allowed) =>
    allowed.endsWith('*') ? model.startsWith(allowed.slice(0, -1)) : allowed === model,
  );
}
