import type { Context } from 'koa';
import type { ApiKeyIdentity } from '../auth/api-key-auth.ts';
import { ApiError } from '../errors.ts';
import type { ProxyMetrics } from '../metrics/proxy-metrics.ts';
import type { Limits, RateLimiter } from '../ratelimit/limiter.ts';
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
 */
export async function enforceLimits(ctx: Context, deps: LimitDeps, tokens: number): Promise<void> {
  const key = ctx.state.apiKey as ApiKeyIdentity;
  const limits = limitsFor(key, deps.defaults);
  const decision = await deps.limiter.check(key.id, limits, tokens);
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
    ctx.state.reservedTokens = limits.tpm > 0 ? tokens : 0;
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
