// Which orders the CA allows, and how long to back off after a failure. Pure functions over the
// persisted attempt record (ledger.ts), so the rules are table-tested without a CA.

/** One order attempt, as remembered in CERT_DIR/orders.json. */
export interface Attempt {
  at: string;
  domain: string;
  ok: boolean;
  /** Failure class (errors.ts); absent on success. */
  reason?: string;
  /** The CA issued a certificate that could not be installed: it still counts as issued. */
  issued?: boolean;
}

interface Limit {
  name: string;
  windowMs: number;
  max: number;
  counts: (a: Attempt, domain: string) => boolean;
}

const HOUR = 3_600_000;

// Let's Encrypt's published limits (letsencrypt.org/docs/rate-limits): 5 identical
// certificates per 7 days, 5 failed authorizations per identifier per hour, 300 new orders
// per 3 hours. Other CAs publish their own; for them only the order ceiling applies.
const ORDERS: Limit = { name: 'new orders per 3 hours', windowMs: 3 * HOUR, max: 300, counts: () => true };
const LETS_ENCRYPT: Limit[] = [
  {
    name: 'duplicate certificates per 7 days',
    windowMs: 168 * HOUR,
    max: 5,
    counts: (a, d) => (a.ok || a.issued === true) && a.domain === d,
  },
  {
    name: 'failed authorizations per hour',
    windowMs: HOUR,
    max: 5,
    counts: (a, d) => !a.ok && a.domain === d && (a.reason === 'challenge' || a.reason === 'dns'),
  },
  ORDERS,
];

export function limitsFor(directoryUrl: string): Limit[] {
  return /^https:\/\/acme(-staging)?-v02\.api\.letsencrypt\.org\//.test(directoryUrl)
    ? LETS_ENCRYPT
    : [ORDERS];
}

/** The earliest time another order stays within every limit, or undefined when it does now. */
export function budgetBlockedUntil(
  attempts: readonly Attempt[],
  limits: readonly Limit[],
  domain: string,
  now: Date,
): { until: Date; limit: string } | undefined {
  let worst: { until: Date; limit: string } | undefined;
  for (const limit of limits) {
    const times = attempts
      .filter((a) => limit.counts(a, domain))
      .map((a) => Date.parse(a.at))
      .filter((t) => now.getTime() - t < limit.windowMs)
      .sort((x, y) => x - y);
    if (times.length < limit.max) continue;
    // Allowed again once enough of the counted attempts have left the window.
    const until = new Date((times[times.length - limit.max] ?? 0) + limit.windowMs);
    if (!worst || until > worst.until) worst = { until, limit: limit.name };
  }
  return worst;
}

export interface BackoffPolicy {
  minMs: number;
  maxMs: number;
}

/**
 * Delay before the next attempt after `failures` consecutive failures: exponential from
 * `minMs`, capped at `maxMs`, with "equal jitter" (between half and all of it) so that many
 * appliances failing together do not return in lockstep; never shorter than the CA's
 * Retry-After.
 */
export function backoffDelayMs(
  failures: number,
  policy: BackoffPolicy,
  retryAfterMs = 0,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.minMs * 2 ** Math.max(0, failures - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(Math.max(jittered, retryAfterMs));
}
