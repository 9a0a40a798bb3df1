import type { Context } from 'koa';
import type { ApiKeyIdentity } from '../auth/api-key-auth.ts';
import { ApiError } from '../errors.ts';
import type { ProxyMetrics } from '../metrics/proxy-metrics.ts';
import type { Decision, Limits, RateLimiter } from '../ratelimit/limiter.ts';
import { setHeaders } from './headers.ts';

export interface LimitDeps {
  limiter: RateLimiter;
  defaults: Limits;
  failOpen: boolean;
  metrics: Pick<ProxyMetrics, 'rateLimited' | 'failOpen'>;
  onRedisError: (err: unknown) => void;
}

/** The limits that apply to a key: its own, else the defaults (0 = unlimited). */
export function limitsFor(key: ApiKeyIdentity, defaults: Limits): Limits {
  return { rpm: key.rpm ?? defaults.rpm, tpm: key.tpm ?? defaults.tpm };
}

/**
 * Charges one request and `tokens` reserved tokens to the caller's key: sets OpenAI's
 * x-ratelimit-* headers, or refuses with 429 and Retry-After. With Redis unreachable,
 * RATE_LIMIT_FAIL_OPEN decides between serving (counted) and 503.
 *
 * Returns undefined when the replica's lease decided at once (most requests of a busy key), and
 * a promise only when Redis had to be asked: the caller awaits it only then, so the common case
 * costs no promise and no extra turn of the microtask queue.
 */
export function enforceLimits(ctx: Context, deps: LimitDeps, tokens: number): Promise<void> | undefined {
  const key = ctx.state.apiKey as ApiKeyIdentity;
  const limits = limitsFor(key, deps.defaults);
  const reserved = limits.tpm > 0 ? tokens : 0;
  const local = deps.limiter.checkLocal(key.id, limits, tokens);
  if (local !== undefined) return apply(ctx, deps, reserved, local);
  return deps.limiter.check(key.id, limits, tokens).then((decision) => apply(ctx, deps, reserved, decision));
}

/** Acts on a decision: headers and the reservation, or the 503 / 429 (thrown). */
function apply(ctx: Context, deps: LimitDeps, reserved: number, decision: Decision): undefined {
  if (decision.kind === 'unavailable') {
    deps.onRedisError(decision.error);
    if (!deps.failOpen) {
      throw new ApiError('upstream_unavailable', 'Rate limits cannot be checked right now; retry shortly.');
    }
    deps.metrics.failOpen.inc();
    return;
  }
  setHeaders(ctx, decision.headers);
  if (decision.kind === 'allowed') {
    ctx.state.reservedTokens = reserved;
    return;
  }
  deps.metrics.rateLimited.inc({ type: decision.by });
  const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
  const unit = decision.by === 'requests' ? 'requests' : 'tokens';
  const message =
    decision.requested > decision.limit
      ? `Request too large: it needs ${decision.requested} tokens, more than this key's limit of ${decision.limit} tokens per minute.`
      : `Rate limit reached for ${unit} per minute: limit ${decision.limit}, requested ${decision.requested}. Please try again in ${seconds}s.`;
  throw new ApiError('rate_limit_exceeded', message, {
    type: decision.by,
    headers: { ...decision.headers, 'retry-after': String(seconds) },
  });
}
