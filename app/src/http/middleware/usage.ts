import type { Context, Next } from 'koa';
import type { ApiKeyIdentity } from '../../auth/api-key-auth.ts';
import { newId } from '../../crypto/ids.ts';
import { ApiError } from '../../errors.ts';
import type { ProxyMetrics } from '../../metrics/proxy-metrics.ts';
import type { RateLimiter } from '../../ratelimit/limiter.ts';
import type { UsageRecorder } from '../../usage/recorder.ts';
import type { TokenCounts } from '../../usage/tokens.ts';
import { limitsFor } from '../limits.ts';
import { responseStatus } from './edge.ts';

export interface UsageDeps {
  recorder: UsageRecorder;
  limiter: RateLimiter;
  defaults: { rpm: number; tpm: number };
  metrics: Pick<ProxyMetrics, 'tokens'>;
  modelLabel: (model: string | undefined) => string;
}

/**
 * Records one usage row for every authenticated API request, success or failure, once the
 * response (or stream) is finished: the upstream's usage when it reported one, else an estimate
 * marked as such. Then settles the token reservation with the real count, off the hot path.
 */
export function recordUsage(deps: UsageDeps) {
  return async function usage(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    let failure: ApiError | undefined;
    try {
      await next();
    } catch (err) {
      failure = err instanceof ApiError ? err : new ApiError('internal_error', 'internal');
      throw err;
    } finally {
      const s = ctx.state;
      const key = s.apiKey as ApiKeyIdentity | undefined;
      if (key) {
        const status = s.clientGone ? 499 : (failure?.status ?? responseStatus(ctx));
        const counts = tokenCounts(
          s.usage,
          s.upstreamKeyId !== undefined && (status < 300 || s.clientGone),
          s,
        );
        deps.recorder.record({
          id: newId(),
          requestId: s.requestId,
          apiKeyId: key.id,
          userId: key.userId,
          upstreamKeyId: s.upstreamKeyId ?? null,
          route: ctx._matchedRoute ? String(ctx._matchedRoute) : ctx.path,
          model: s.model ?? null,
          promptTokens: counts.prompt,
          completionTokens: counts.completion,
          totalTokens: counts.total,
          estimated: counts.estimated,
          statusCode: status,
          errorCode: failure?.code ?? (status >= 400 ? `upstream_${status}` : null),
          latencyMs: Math.round(performance.now() - started),
          stream: s.stream === true,
          createdAtMs: Date.now(),
        });
        if (counts.total > 0) {
          const model = deps.modelLabel(s.model);
          deps.metrics.tokens.inc({ model, key_id: String(key.id), kind: 'prompt' }, counts.prompt);
          deps.metrics.tokens.inc({ model, key_id: String(key.id), kind: 'completion' }, counts.completion);
        }
        const reserved = (s.reservedTokens as number | undefined) ?? 0;
        if (reserved > 0) {
          deps.limiter.settleTokens(key.id, limitsFor(key, deps.defaults), counts.total - reserved);
        }
      }
    }
  };
}

/**
 * The upstream's own count when it reported one; otherwise, for a request the upstream served
 * (or was cut off while serving), an estimate from the body size and the streamed chunks;
 * otherwise nothing was used.
 */
function tokenCounts(
  reported: TokenCounts | undefined,
  served: boolean,
  s: { promptEstimate?: number; completionEstimate?: number },
): TokenCounts & { estimated: boolean } {
  if (reported) return { ...reported, estimated: false };
  if (!served) return { prompt: 0, completion: 0, total: 0, estimated: false };
  const prompt = s.promptEstimate ?? 0;
  const completion = s.completionEstimate ?? 0;
  return { prompt, completion, total: prompt + completion, estimated: true };
}
