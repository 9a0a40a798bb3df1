import { formatReset } from './reset-format.ts';

export interface Limits {
  /** Requests per minute; 0 = unlimited. */
  rpm: number;
  /** Tokens per minute; 0 = unlimited. */
  tpm: number;
}

/** What one call to gcra.lua asks for, and what this replica took from its own balance meanwhile. */
export interface LeasePlan {
  requestNeed: number;
  tokenNeed: number;
  requestExtra: number;
  tokenExtra: number;
  /** Tokens used beyond earlier reservations, charged by this call. */
  debt: number;
  /** Taken from the local balance for this request; given back if the request is refused. */
  takenRequests: number;
  takenTokens: number;
}

/** Redis's answer about a key, as of `at` (ms): remaining and time until the bucket is full. */
interface View {
  at: number;
  requestRemaining: number;
  requestResetMs: number;
  tokenRemaining: number;
  tokenResetMs: number;
}

/**
 * What one replica holds of one key's limits: capacity leased from Redis (already charged there)
 * that it has not spent yet. `tokens` goes negative when requests used more tokens than they
 * reserved: a debt the next call to Redis pays.
 */
export class Budget<Answer = unknown> {
  requests = 0;
  tokens = 0;
  lastUsedMs = 0;
  /** The call to Redis in flight for this key, which other requests wait for instead of asking too. */
  pending: Promise<Answer> | undefined;
  /** Out of use: what it held went back to Redis, and whatever reaches it later goes back too. */
  retired = false;
  #view: View | undefined;

  readonly limits: Limits;
  readonly periodMs: number;

  constructor(limits: Limits, periodMs: number) {
    this.limits = limits;
    this.periodMs = periodMs;
  }

  /** True when the balance alone pays for one request and `tokens` tokens. */
  covers(tokens: number): boolean {
    return (
      this.#view !== undefined &&
      (this.limits.rpm === 0 || this.requests >= 1) &&
      (this.limits.tpm === 0 || this.tokens >= tokens)
    );
  }

  spend(tokens: number): void {
    if (this.limits.rpm > 0) this.requests -= 1;
    if (this.limits.tpm > 0) this.tokens -= tokens;
  }

  /**
   * What to ask Redis for when the balance does not cover a request: the part it does not cover,
   * plus a lease of `extra` units on each limit that ran short, plus any debt. The covered part is
   * taken from the balance now, so concurrent requests cannot spend it twice.
   */
  plan(tokens: number, extra: { requests: number; tokens: number }): LeasePlan {
    const { rpm, tpm } = this.limits;
    const takenRequests = rpm > 0 && this.requests >= 1 ? 1 : 0;
    const requestNeed = rpm > 0 ? 1 - takenRequests : 0;
    const takenTokens = tpm > 0 ? Math.min(tokens, Math.max(0, this.tokens)) : 0;
    const tokenNeed = tpm > 0 ? tokens - takenTokens : 0;
    const debt = tpm > 0 ? Math.max(0, -this.tokens) : 0;
    this.requests -= takenRequests;
    this.tokens += debt - takenTokens;
    return {
      requestNeed,
      tokenNeed,
      requestExtra: requestNeed > 0 ? extra.requests : 0,
      tokenExtra: tokenNeed > 0 ? extra.tokens : 0,
      debt,
      takenRequests,
      takenTokens,
    };
  }

  /** Redis answered: keep the leased extras (if the request was allowed) and its view of the key. */
  granted(plan: LeasePlan, answer: { allowed: boolean; requestExtra: number; tokenExtra: number }): void {
    if (answer.allowed) {
      this.requests += answer.requestExtra;
      this.tokens += answer.tokenExtra;
    } else {
      this.#giveBack(plan);
    }
  }

  /** Redis could not be asked: the request took nothing and the debt is still owed. */
  failed(plan: LeasePlan): void {
    this.#giveBack(plan);
    this.tokens -= plan.debt;
  }

  #giveBack(plan: LeasePlan): void {
    this.requests += plan.takenRequests;
    this.tokens += plan.takenTokens;
  }

  /** Takes out everything it holds, at once, and marks it out of use. */
  retire(): { requests: number; tokens: number } {
    const held = { requests: this.requests, tokens: this.tokens };
    this.requests = 0;
    this.tokens = 0;
    this.retired = true;
    return held;
  }

  see(view: View): void {
    this.#view = view;
  }

  /**
   * OpenAI's x-ratelimit-* headers from Redis's last answer, with what this replica still holds
   * added back: Redis counts leased units as spent, the client should not.
   */
  headers(nowMs: number): Record<string, string> {
    const headers: Record<string, string> = {};
    const v = this.#view;
    if (v === undefined) return headers;
    const elapsed = nowMs - v.at;
    const { rpm, tpm } = this.limits;
    if (rpm > 0) {
      const held = this.requests;
      headers['x-ratelimit-limit-requests'] = String(rpm);
      headers['x-ratelimit-remaining-requests'] = String(clamp(v.requestRemaining + held, 0, rpm));
      headers['x-ratelimit-reset-requests'] = formatReset(
        Math.max(0, v.requestResetMs - elapsed - (held * this.periodMs) / rpm),
      );
    }
    if (tpm > 0) {
      const held = this.tokens;
      headers['x-ratelimit-limit-tokens'] = String(tpm);
      headers['x-ratelimit-remaining-tokens'] = String(clamp(v.tokenRemaining + held, 0, tpm));
      headers['x-ratelimit-reset-tokens'] = formatReset(
        Math.max(0, v.tokenResetMs - elapsed - (held * this.periodMs) / tpm),
      );
    }
    return headers;
  }
}

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.floor(n)));

/**
 * The extra units a replica leases per call to Redis for a limit: `fraction` of it (about 100 ms
 * of its rate), at most `max`. Under 2 there is no lease and every request asks Redis, so small
 * limits stay exact to the request.
 */
export function leaseExtra(limit: number, fraction: number, max: number): number {
  const n = Math.min(max, Math.floor(limit * fraction));
  return n >= 2 ? n : 0;
}
