// Failure classes of an order. The class is a metric label (a closed set) and picks the log
// message's hint; the ledger counts challenge and DNS failures against the CA's limits.

export const FAILURE_REASONS = [
  'unreachable',
  'rate_limited',
  'dns',
  'challenge',
  'ca_error',
  'bad_certificate',
  'storage',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

const HINTS: Record<FailureReason, string> = {
  unreachable: 'check ACME_DIRECTORY, outbound HTTPS and ACME_CA_FILE',
  rate_limited: 'the CA limits orders; certd waits as long as it asks',
  dns: 'DOMAIN must resolve (A/AAAA) to this host in public DNS',
  challenge:
    'the CA must reach http://DOMAIN/.well-known/acme-challenge/ on port 80, served from ACME_WEBROOT',
  ca_error: 'the CA refused the request; see the message',
  bad_certificate: 'the CA returned a certificate certd will not install; see the message',
  storage: 'check that CERT_DIR and ACME_WEBROOT are writable',
};

/** An order that failed, with a class, a message without secrets, and the CA's Retry-After. */
export class OrderError extends Error {
  override name = 'OrderError';
  readonly reason: FailureReason;
  readonly retryAfterMs: number | undefined;

  constructor(reason: FailureReason, message: string, retryAfterMs?: number) {
    super(message);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }

  get hint(): string {
    return HINTS[this.reason];
  }
}

/**
 * A request to the CA that got no HTTP response at all (refused, reset, timed out, TLS refused),
 * thrown by the HTTP adapter configureAcmeHttp installs. acme-client's own handling of such a
 * request fails with an unrelated TypeError that loses the cause; this carries it instead.
 */
export class NoResponseError extends Error {
  override name = 'NoResponseError';
  readonly code: string | undefined;

  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

/** Wraps whatever a step of the order threw into an OrderError of the right class. */
export function classifyError(
  err: unknown,
  phase: string,
  rateLimit?: { retryAfterMs?: number },
): OrderError {
  if (err instanceof OrderError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (rateLimit) {
    return new OrderError(
      'rate_limited',
      `${phase}: rate limited by the CA: ${message}`,
      rateLimit.retryAfterMs,
    );
  }
  if (err instanceof NoResponseError) {
    const cause = code && !message.includes(code) ? ` (${code})` : '';
    return new OrderError('unreachable', `${phase}: no response from the CA: ${message}${cause}`);
  }
  if (code && /^(E[A-Z]+|ERR_[A-Z_]+)$/.test(code) && !code.startsWith('ERR_BAD_')) {
    const storage = FILE_SYSTEM_CODES.has(code);
    return new OrderError(storage ? 'storage' : 'unreachable', `${phase}: ${message} (${code})`);
  }
  return new OrderError('ca_error', `${phase}: ${message}`);
}

/**
 * Errors only the file system gives (a path in CERT_DIR that is a file, a full disk...): the
 * operator's to fix, not the network's. Any other errno of a step is the CA being unreachable.
 */
const FILE_SYSTEM_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EISDIR']);

/** A file-system failure (CERT_DIR, ACME_WEBROOT), whatever its errno. */
export function storageError(err: unknown, what: string): OrderError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new OrderError(
    'storage',
    `${what}: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`,
  );
}

/** Parses a Retry-After header: delay-seconds or an HTTP date. */
export function parseRetryAfter(header: unknown, now: Date = new Date()): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
