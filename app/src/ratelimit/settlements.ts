import { newId } from '../crypto/ids.ts';
import { keysOf, settledKeyOf } from './keys.ts';
import type { Limits } from './lease.ts';

/** settle.lua, as defined on the Redis connection. */
export type SettleCommand = (...args: Array<string | number>) => Promise<unknown>;

/** Amounts sent under one id: while unanswered they may have run, so they never change. */
interface Sent {
  id: string;
  firstSentMs: number;
  requests: number;
  tokens: number;
}

/**
 * What one key owes Redis, or Redis owes it, in the terms of the limits it was charged under:
 * positive amounts are charges (debts), negative ones returns.
 */
interface Account {
  keyId: number;
  limits: Limits;
  /** Not sent yet: later amounts join these. */
  requests: number;
  tokens: number;
  /** Sent and not confirmed. */
  sent: Sent | undefined;
  /** Flushes queued; the account leaves the map once none is and it holds nothing. */
  queued: number;
  tail: Promise<void>;
}

export interface SettlementsOptions {
  settle: SettleCommand;
  periodMs: number;
  now: () => number;
  onError: (err: unknown) => void;
}

/**
 * Moves amounts into a key's TATs in Redis, each exactly once, and keeps what could not be sent
 * for `retry` (the sweeper's and close's) in the limits it was charged under: a dropped debt would
 * be tokens used and never charged.
 *
 * A failed call may still have run (a command timeout, a resend after a reconnect), so it is sent
 * again only under its own id, which settle.lua applies once. For a period that id is reused;
 * after that its mark (two periods) could be gone, and the amounts are sent anew without their
 * returns: a charge applied twice only under-admits, a return applied twice would over-admit (and
 * a period late, the units it returns have refilled anyway).
 */
export class Settlements {
  readonly #settle: SettleCommand;
  readonly #periodMs: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  readonly #accounts = new Map<string, Account>();

  constructor(options: SettlementsOptions) {
    this.#settle = options.settle;
    this.#periodMs = options.periodMs;
    this.#now = options.now;
    this.#onError = options.onError;
  }

  /** Settles `requests` and `tokens` (+ charge, − return) now; resolves once sent or held. */
  add(keyId: number, limits: Limits, requests: number, tokens: number): Promise<void> {
    if (requests === 0 && tokens === 0) return Promise.resolve();
    const name = `${keyId}:${limits.rpm}:${limits.tpm}`;
    let account = this.#accounts.get(name);
    if (account === undefined) {
      account = {
        keyId,
        limits,
        requests: 0,
        tokens: 0,
        sent: undefined,
        queued: 0,
        tail: Promise.resolve(),
      };
      this.#accounts.set(name, account);
    }
    account.requests += requests;
    account.tokens += tokens;
    return this.#queue(name, account);
  }

  /** Sends again what failed before; waits for what is being sent. */
  retry(): Promise<void> {
    const all = [...this.#accounts].map(([name, a]) => (a.queued > 0 ? a.tail : this.#queue(name, a)));
    return Promise.all(all).then(() => {});
  }

  /** One flush at a time per account, so an unconfirmed id is never in flight twice at once. */
  #queue(name: string, a: Account): Promise<void> {
    a.queued += 1;
    a.tail = a.tail.then(() => this.#flush(name, a));
    return a.tail;
  }

  async #flush(name: string, a: Account): Promise<void> {
    try {
      if (a.sent !== undefined) await this.#send(a, a.sent);
      if (a.requests !== 0 || a.tokens !== 0) {
        const sent = { id: newId(), firstSentMs: this.#now(), requests: a.requests, tokens: a.tokens };
        a.sent = sent;
        a.requests = 0;
        a.tokens = 0;
        await this.#send(a, sent);
      }
    } catch (err) {
      this.#onError(err);
    } finally {
      a.queued -= 1;
      const empty = a.sent === undefined && a.requests === 0 && a.tokens === 0;
      if (a.queued === 0 && empty) this.#accounts.delete(name);
    }
  }

  async #send(a: Account, sent: Sent): Promise<void> {
    const now = this.#now();
    let s = sent;
    if (now - s.firstSentMs > this.#periodMs) {
      // Its mark may have expired by now: sent anew, with only the parts safe to apply twice.
      s = { id: newId(), firstSentMs: now, requests: Math.max(0, s.requests), tokens: Math.max(0, s.tokens) };
      a.sent = s.requests === 0 && s.tokens === 0 ? undefined : s;
      if (a.sent === undefined) return;
    }
    const { rpm, tpm } = a.limits;
    await this.#settle(
      ...keysOf(a.keyId),
      settledKeyOf(a.keyId, s.id),
      now,
      this.#periodMs,
      rpm,
      tpm,
      s.requests,
      s.tokens,
      2 * this.#periodMs,
    );
    a.sent = undefined;
  }
}
