import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { keysOf } from './keys.ts';
import { Budget, type LeasePlan, type Limits, leaseExtra } from './lease.ts';
import { Settlements } from './settlements.ts';

export type { Limits } from './lease.ts';

const GCRA = readFileSync(new URL('./gcra.lua', import.meta.url), 'utf8');
const SETTLE = readFileSync(new URL('./settle.lua', import.meta.url), 'utf8');

type LuaCommand = (...args: Array<string | number>) => Promise<unknown>;
interface Scripts {
  gpGcra: LuaCommand;
  gpSettle: LuaCommand;
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

export interface RateLimiterOptions {
  redis: Redis;
  periodMs?: number;
  now?: () => number;
  /** How much of a limit's rate a replica leases per call to Redis (default 100 ms of it). */
  leaseMs?: number;
  /** A key unused this long returns what its replica still holds (default 1 s). */
  idleMs?: number;
  /** A failed settlement in the background (it is retried). */
  onError?: (err: unknown) => void;
}

const sameLimits = (a: Limits, b: Limits) => a.rpm === b.rpm && a.tpm === b.tpm;

/**
 * Per-key request and token limits in Redis, shared by every replica: one Lua script checks and
 * charges both limits atomically (GCRA, so bursts never exceed a limit's size and there is no
 * window edge to double up at). Keys start with `rate_limit:`.
 *
 * So that Redis is not on every request's path, a replica leases about 100 ms of a busy key's rate
 * in the same call and spends it locally; small limits lease nothing and stay exact to the request.
 * Leased units are charged in Redis before they are spent, so replicas together never admit more
 * than a limit; what a replica holds unused is returned once the key goes idle (and at close).
 * Token reservations are settled into the same balance: a refund is spent locally, a debt is
 * charged by the next call. A budget retired (idle, its key's limits changed, close) hands what it
 * holds to Settlements at once, and so does anything that reaches it later.
 */
export class RateLimiter {
  readonly #redis: Redis & Scripts;
  readonly #periodMs: number;
  readonly #now: () => number;
  readonly #leaseFraction: number;
  readonly #idleMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #budgets = new Map<number, Budget<Decision>>();
  readonly #settlements: Settlements;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(options: RateLimiterOptions) {
    const redis = options.redis;
    if (!('gpGcra' in redis)) {
      redis.defineCommand('gpGcra', { numberOfKeys: 2, lua: GCRA });
      redis.defineCommand('gpSettle', { numberOfKeys: 3, lua: SETTLE });
    }
    this.#redis = redis as Redis & Scripts;
    this.#periodMs = options.periodMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#leaseFraction = (options.leaseMs ?? 100) / this.#periodMs;
    this.#idleMs = options.idleMs ?? 1_000;
    this.#onError = options.onError ?? (() => {});
    this.#settlements = new Settlements({
      settle: (...args) => this.#redis.gpSettle(...args),
      periodMs: this.#periodMs,
      now: this.#now,
      onError: this.#onError,
    });
    this.#sweeper = setInterval(() => void this.settle({ idleOnly: true }), this.#idleMs);
    this.#sweeper.unref();
  }

  /**
   * The decision when no call to Redis is needed: the key is unlimited, or this replica's lease
   * covers the request, which is then charged. Undefined otherwise: ask `check`. Most requests
   * of a busy key end here, without a promise to wait for.
   */
  checkLocal(keyId: number, limits: Limits, tokens: number): Decision | undefined {
    if (limits.rpm === 0 && limits.tpm === 0) return { kind: 'allowed', headers: {} };
    return this.#spendLeased(this.#budget(keyId, limits), tokens);
  }

  /** Checks and, when allowed, charges one request and `tokens` tokens to `keyId`. */
  async check(keyId: number, limits: Limits, tokens: number): Promise<Decision> {
    if (limits.rpm === 0 && limits.tpm === 0) return { kind: 'allowed', headers: {} };
    let budget = this.#budget(keyId, limits);
    const extra = {
      requests: leaseExtra(limits.rpm, this.#leaseFraction, 1_000),
      tokens: leaseExtra(limits.tpm, this.#leaseFraction, 1_000_000),
    };
    // A request that finds a lease for its key in flight waits for it rather than asking too; it
    // shares a failure, and after a refusal asks on its own (it may need less). Without leases
    // (small limits) there is nothing to wait for: each request asks Redis at once.
    const leasing = extra.requests > 0 || extra.tokens > 0;
    while (leasing && budget.pending !== undefined && !budget.covers(tokens)) {
      const other = await budget.pending;
      // Retired meanwhile: what it held went back to Redis, so carry on with the current budget.
      if (budget.retired) budget = this.#budget(keyId, limits);
      if (other.kind === 'unavailable') return other;
      if (other.kind === 'denied') break;
    }
    const leased = this.#spendLeased(budget, tokens);
    if (leased !== undefined) return leased;
    const plan = budget.plan(tokens, extra);
    const call = this.#ask(keyId, budget, plan, tokens);
    budget.pending = call;
    try {
      return await call;
    } finally {
      if (budget.pending === call) budget.pending = undefined;
    }
  }

  /**
   * Settles a request's token reservation with its real usage (`delta` = used − reserved): a
   * refund goes back into this replica's balance, a debt is charged by the key's next call.
   */
  settleTokens(keyId: number, limits: Limits, delta: number): void {
    if (limits.tpm === 0 || delta === 0) return;
    const current = this.#budgets.get(keyId);
    if (this.#closed || (current !== undefined && !sameLimits(current.limits, limits))) {
      // Settled in Redis now. After close: no budget would be settled again. Made under other
      // limits (the key's changed while its request ran): in those, the inverse of its charge,
      // rather than by retiring the current budget to make one for them (which the next request,
      // under the new limits, retires again).
      void this.#settlements.add(keyId, limits, 0, delta);
      return;
    }
    this.#budget(keyId, limits).tokens -= delta;
  }

  /**
   * Returns unused leases to Redis and pays debts, for keys idle for `idleMs` (or all of them),
   * and sends again the settlements that failed before: what fails now is kept, to be tried again.
   */
  async settle({ idleOnly = false } = {}): Promise<void> {
    const now = this.#now();
    const due = [...this.#budgets].filter(
      ([, b]) => !idleOnly || (b.pending === undefined && now - b.lastUsedMs >= this.#idleMs),
    );
    await Promise.all([this.#settlements.retry(), ...due.map(([keyId, b]) => this.#retire(keyId, b))]);
  }

  /**
   * Stops the background settlement and settles everything still held (on shutdown). From now on
   * a request's token settlement goes to Redis at once.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    // Calls in flight bring their leases home first, so that these are returned with the rest.
    await Promise.all([...this.#budgets.values()].map((b) => b.pending));
    await this.settle();
  }

  /** Allowed and charged when what this replica holds covers the request; else undefined. */
  #spendLeased(budget: Budget<Decision>, tokens: number): Decision | undefined {
    if (!budget.covers(tokens)) return undefined;
    budget.spend(tokens);
    return { kind: 'allowed', headers: budget.headers(this.#now()) };
  }

  #budget(keyId: number, limits: Limits): Budget<Decision> {
    let budget = this.#budgets.get(keyId);
    if (budget !== undefined && !sameLimits(budget.limits, limits)) {
      // The key's limits changed: what was leased under the old ones goes back.
      void this.#retire(keyId, budget);
      budget = undefined;
    }
    if (budget === undefined) {
      budget = new Budget<Decision>(limits, this.#periodMs);
      this.#budgets.set(keyId, budget);
    }
    budget.lastUsedMs = this.#now();
    return budget;
  }

  /**
   * Takes the budget out of use and settles what it holds, in its own limits. Taken at once, so
   * nothing can spend it meanwhile; called again for whatever reaches it later.
   */
  #retire(keyId: number, b: Budget<Decision>): Promise<void> {
    if (this.#budgets.get(keyId) === b) this.#budgets.delete(keyId);
    const held = b.retire();
    return this.#settlements.add(keyId, b.limits, -held.requests, -held.tokens);
  }

  async #ask(keyId: number, budget: Budget<Decision>, plan: LeasePlan, tokens: number): Promise<Decision> {
    const { rpm, tpm } = budget.limits;
    const now = this.#now();
    let raw: unknown;
    try {
      raw = await this.#redis.gpGcra(
        ...keysOf(keyId),
        now,
        this.#periodMs,
        rpm,
        tpm,
        plan.requestNeed,
        plan.tokenNeed,
        plan.requestExtra,
        plan.tokenExtra,
        plan.debt,
      );
    } catch (error) {
      budget.failed(plan);
      // A retired budget is settled by no one: the restored debt and give-back go to Redis now.
      if (budget.retired) void this.#retire(keyId, budget);
      return { kind: 'unavailable', error };
    }
    const [
      allowed,
      deniedBy,
      reqRemaining,
      reqReset,
      tokRemaining,
      tokReset,
      retryAfter,
      reqExtra,
      tokExtra,
    ] = (raw as unknown[]).map(Number) as number[];
    budget.granted(plan, { allowed: allowed === 1, requestExtra: reqExtra ?? 0, tokenExtra: tokExtra ?? 0 });
    // Leased extras or give-backs landing in a retired budget would be lost: they go back now.
    if (budget.retired) void this.#retire(keyId, budget);
    budget.see({
      at: now,
      requestRemaining: reqRemaining ?? 0,
      requestResetMs: reqReset ?? 0,
      tokenRemaining: tokRemaining ?? 0,
      tokenResetMs: tokReset ?? 0,
    });
    const headers = budget.headers(now);
    if (allowed === 1) return { kind: 'allowed', headers };
    const by = deniedBy === 1 ? 'requests' : 'tokens';
    return {
      kind: 'denied',
      by,
      retryAfterMs: Math.max(retryAfter ?? 0, 1),
      headers,
      limit: by === 'requests' ? rpm : tpm,
      requested: by === 'requests' ? 1 : tokens,
    };
  }
}
