import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.ts';
import { type Attempt, type BackoffPolicy, backoffDelayMs, budgetBlockedUntil, limitsFor } from './limits.ts';

/**
 * CERT_DIR/orders.json: the order attempts of the last week and the backoff state. It lives on
 * the certs volume, not in memory, so a crash-looping certd, a second container or a repeated
 * `issue-cert` all see the same history and cannot together exceed what the CA allows.
 */
export interface Ledger {
  attempts: Attempt[];
  consecutiveFailures: number;
  /** Our own exponential backoff after failures. */
  backoffUntil?: string;
  /** The CA's Retry-After: binding on every process, `issue-cert` included. */
  caRetryAfter?: string;
  lastError?: string;
  lastSuccessAt?: string;
  /** The certificate installed by the last successful order, and the directory that issued it. */
  issued?: Issued;
}

/**
 * Which ACME directory issued certificate `serial`: a certificate from another directory than
 * ACME_DIRECTORY (letsencrypt-staging, when that was the setting) is replaced at once.
 */
export interface Issued {
  serial: string;
  directoryUrl: string;
}

const KEEP_MS = 8 * 24 * 3_600_000; // a little longer than the longest limit window

export function emptyLedger(): Ledger {
  return { attempts: [], consecutiveFailures: 0 };
}

/** Reads the record; a missing or unreadable one starts empty (the CA still enforces its limits). */
export async function readLedger(path: string): Promise<Ledger> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<Ledger>;
    if (!Array.isArray(parsed.attempts)) return emptyLedger();
    return { ...emptyLedger(), ...parsed, attempts: parsed.attempts };
  } catch {
    return emptyLedger();
  }
}

export async function writeLedger(path: string, ledger: Ledger, now: Date): Promise<void> {
  const attempts = ledger.attempts.filter((a) => now.getTime() - Date.parse(a.at) < KEEP_MS);
  await writeFileAtomic(path, `${JSON.stringify({ ...ledger, attempts }, null, 2)}\n`, 0o644);
}

// No CA limit here is longer than a week, so neither is a Retry-After worth honouring.
const RETRY_AFTER_MAX_MS = 168 * 3_600_000;

/**
 * The record with times a clock that ran ahead wrote brought back within reach: attempts "in
 * the future" happened at the latest now, and no backoff or Retry-After lasts longer than its
 * maximum from now. Taken as they are, they would stop renewal for as long as the clock had
 * been off (years, after a bad RTC). Undefined when nothing needs it; the caller saves the
 * result, so that the holds run out from now rather than being pushed ahead at every check.
 */
export function pullBackFuture(ledger: Ledger, now: Date, backoffMaxMs: number): Ledger | undefined {
  const cap = (iso: string | undefined, maxMs: number) =>
    iso && Date.parse(iso) > now.getTime() + maxMs ? new Date(now.getTime() + maxMs).toISOString() : iso;
  const next: Ledger = {
    ...ledger,
    attempts: ledger.attempts.map((a) => ({ ...a, at: cap(a.at, 0) ?? a.at })),
    backoffUntil: cap(ledger.backoffUntil, backoffMaxMs),
    caRetryAfter: cap(ledger.caRetryAfter, RETRY_AFTER_MAX_MS),
  };
  const changed =
    next.backoffUntil !== ledger.backoffUntil ||
    next.caRetryAfter !== ledger.caRetryAfter ||
    next.attempts.some((a, i) => a.at !== ledger.attempts[i]?.at);
  return changed ? next : undefined;
}

/** `issued`: what the order installed (undefined if live/ could not be read back). */
export function recordSuccess(ledger: Ledger, domain: string, now: Date, issued: Issued | undefined): Ledger {
  return {
    attempts: [...ledger.attempts, { at: now.toISOString(), domain, ok: true }],
    consecutiveFailures: 0,
    lastSuccessAt: now.toISOString(),
    issued,
  };
}

export interface Failure {
  reason: string;
  message: string;
  retryAfterMs?: number;
  issued?: boolean;
}

export function recordFailure(
  ledger: Ledger,
  domain: string,
  failure: Failure,
  policy: BackoffPolicy,
  now: Date,
  random: () => number = Math.random,
): Ledger {
  const failures = ledger.consecutiveFailures + 1;
  const delay = backoffDelayMs(failures, policy, failure.retryAfterMs, random);
  const retryAfter = failure.retryAfterMs ? new Date(now.getTime() + failure.retryAfterMs) : undefined;
  return {
    ...ledger,
    attempts: [
      ...ledger.attempts,
      {
        at: now.toISOString(),
        domain,
        ok: false,
        reason: failure.reason,
        ...(failure.issued ? { issued: true } : {}),
      },
    ],
    consecutiveFailures: failures,
    backoffUntil: new Date(now.getTime() + delay).toISOString(),
    caRetryAfter: retryAfter?.toISOString(),
    lastError: failure.message,
  };
}

export interface GateQuery {
  domain: string;
  directoryUrl: string;
  now: Date;
  /** Ignore our own backoff from failures recorded before this time (an operator's explicit run). */
  backoffFrom?: Date;
}

/** Why no order may be placed before `until`, or undefined when one may be placed now. */
export function orderGate(ledger: Ledger, q: GateQuery): { until: Date; why: string } | undefined {
  const holds: { until: Date; why: string }[] = [];
  if (ledger.caRetryAfter) holds.push({ until: new Date(ledger.caRetryAfter), why: "the CA's Retry-After" });
  const lastFailure = ledger.attempts.findLast((a) => !a.ok);
  const backoffApplies =
    !q.backoffFrom || (lastFailure && Date.parse(lastFailure.at) >= q.backoffFrom.getTime());
  if (ledger.backoffUntil && backoffApplies) {
    holds.push({
      until: new Date(ledger.backoffUntil),
      why: `backoff after ${ledger.consecutiveFailures} failure(s)`,
    });
  }
  const budget = budgetBlockedUntil(ledger.attempts, limitsFor(q.directoryUrl), q.domain, q.now);
  if (budget) holds.push({ until: budget.until, why: `the CA's limit of ${budget.limit}` });
  const active = holds.filter((h) => h.until > q.now).sort((a, b) => b.until.getTime() - a.until.getTime());
  return active[0];
}
