import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { formatReset } from './reset-format.ts';

const GCRA = readFileSync(new URL('./gcra.lua', import.meta.url), 'utf8');
const ADJUST = readFileSync(new URL('./adjust.lua', import.meta.url), 'utf8');

type LuaCommand = (...args: Array<string | number>) => Promise<unknown>;

export interface Limits {
  /** Requests per minute; 0 = unlimited. */
  rpm: number;
  /** Tokens per minute; 0 = unlimited. */
  tpm: number;
}

export type Decision =
  | { kind: 'allowed'; headers: Record<string, string> }
  | {
      kind: 'denied';
      by: 'requests' | 'tokens';
      retryAfterMs: number;
      headers: Record<string, string>;
      limit: number;
      requested: number;
    }
  /** Redis could not be asked; RATE_LIMIT_FAIL_OPEN decides what the caller does. */
  | { kind: 'unavailable'; error: unknown };

/**
 * Per-key request and token limits in Redis, shared by every replica: one Lua script checks and
 * charges both limits atomically (GCRA, so bursts never exceed a limit's size and there is no
 * window edge to double up at). Keys start with `rate_limit:`.
 */
export class RateLimiter {
  readonly #redis: Redis;
  readonly #periodMs: number;
  readonly #now: () => number;

  constructor(options: { redis: Redis; periodMs?: number; now?: () => number }) {
    this.#redis = options.redis;
    this.#periodMs = options.periodMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    if (!('gpGcra' in this.#redis)) {
      this.#redis.defineCommand('gpGcra', { numberOfKeys: 2, lua: GCRA });
      this.#redis.defineCommand('gpAdjust', { numberOfKeys: 1, lua: ADJUST });
    }
  }

  /** Checks and, when allowed, charges one request and `tokens` tokens to `keyId`. */
  async check(keyId: number, limits: Limits, tokens: number): Promise<Decision> {
    if (limits.rpm === 0 && limits.tpm === 0) return { kind: 'allowed', headers: {} };
    let raw: unknown;
    try {
      raw = await (this.#redis as unknown as { gpGcra: LuaCommand }).gpGcra(
        `rate_limit:{${keyId}}:requests`,
        `rate_limit:{${keyId}}:tokens`,
        this.#now(),
        this.#periodMs,
        limits.rpm,
        limits.tpm,
        tokens,
      );
    } catch (error) {
      return { kind: 'unavailable', error };
    }
    const [allowed, deniedBy, reqRemaining, reqReset, tokRemaining, tokReset, retryAfter] = (
      raw as number[]
    ).map(Number);
    const headers: Record<string, string> = {};
    if (limits.rpm > 0) {
      headers['x-ratelimit-limit-requests'] = String(limits.rpm);
      headers['x-ratelimit-remaining-requests'] = String(reqRemaining);
      headers['x-ratelimit-reset-requests'] = formatReset(reqReset ?? 0);
    }
    if (limits.tpm > 0) {
      headers['x-ratelimit-limit-tokens'] = String(limits.tpm);
      headers['x-ratelimit-remaining-tokens'] = String(tokRemaining);
      headers['x-ratelimit-reset-tokens'] = formatReset(tokReset ?? 0);
    }
    if (allowed === 1) return { kind: 'allowed', headers };
    const by = deniedBy === 1 ? 'requests' : 'tokens';
    return {
      kind: 'denied',
      by,
      retryAfterMs: Math.max(retryAfter ?? 0, 1),
      headers,
      limit: by === 'requests' ? limits.rpm : limits.tpm,
      requested: by === 'requests' ? 1 : tokens,
    };
  }

  /** Moves the token charge by `delta` (real usage minus the reservation). */
  async reconcile(keyId: number, tpm: number, delta: number): Promise<void> {
    if (tpm === 0 || delta === 0) return;
    await (this.#redis as unknown as { gpAdjust: LuaCommand }).gpAdjust(
      `rate_limit:{${keyId}}:tokens`,
      this.#now(),
      this.#periodMs,
      tpm,
      delta,
    );
  }
}
