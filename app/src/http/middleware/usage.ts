import type { Context, Next } from 'koa';
import type { ApiKeyIdentity } from '../../auth/api-key-auth.ts';
import { newId } from '../../crypto/ids.ts';
import { ApiError, ClientGoneError } from '../../errors.ts';
import type { ProxyMetrics } from '../../metrics/proxy-metrics.ts';
import type { RateLimiter } from '../../ratelimit/limiter.ts';
import type { UsageRecorder } from '../../usage/recorder.ts';
import { type TokenCounts, usageFromBody } from '../../usage/tokens.ts';
import type { AfterResponse } from '../after-response.ts';
import { limitsFor } from '../limits.ts';
import type { StreamOutcome } from '../relay.ts';
import { markClientGone, responseStatus } from './edge.ts';

export interface UsageDeps {
  recorder: UsageRecorder;
  limiter: RateLimiter;
  defaults: { rpm: number; tpm: number };
  metrics: Pick<ProxyMetrics, 'tokens' | 'streamsInterrupted'>;
  modelLabel: (model: string | undefined) => string;
  /** Where the row and the settlement wait until the response is out. */
  afterResponse: AfterResponse;
}

/**
 * Records one usage row for every authenticated API request, success or failure, once the
 * response (or stream) is finished: the upstream's usage when it reported one, else an estimate
 * marked as such. Then settles the token reservation with the real count. All of it runs after
 * the response is written (see AfterResponse); status, latency and time are taken at the end.
 */
export function recordUsage(deps: UsageDeps) {
  return async function usage(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    let failure: ApiError | undefined;
    try {
      await next();
    } catch (err) {
      // A client that left is no failure of ours; marked here, before the row reads its status.
      if (err instanceof ClientGoneError) markClientGone(ctx, err);
      else failure = err instanceof ApiError ? err : new ApiError('internal_error', 'internal');
      throw err;
    } finally {
      const key = ctx.state.apiKey as ApiKeyIdentity | undefined;
      if (key) {
        const status = ctx.state.clientGone ? 499 : (failure?.status ?? responseStatus(ctx));
        const ended = {
          status,
          failure,
          latencyMs: Math.round(performance.now() - started),
          atMs: Date.now(),
        };
        deps.afterResponse.run(() => settleRequest(deps, ctx, key, ended));
      }
    }
  };
}

/** The usage row, the token metrics and the token settlement of one finished request. */
function settleRequest(
  deps: UsageDeps,
  ctx: Context,
  key: ApiKeyIdentity,
  ended: { status: number; failure: ApiError | undefined; latencyMs: number; atMs: number },
): void {
  const s = ctx.state;
  const { status, failure } = ended;
  const reported: TokenCounts | undefined =
    s.usage ?? (s.usageBody !== undefined ? usageFromBody(s.usageBody as Buffer) : undefined);
  const counts = tokenCounts(reported, s.upstreamKeyId !== undefined && (status < 300 || s.clientGone), s);
  const route = ctx._matchedRoute ? String(ctx._matchedRoute) : ctx.path;
  const code = errorCode(status, failure, s);
  // A stream that failed after its 200 went out: the request metrics see a success, so it is
  // counted here, where the row's error code is decided.
  if (code === 'upstream_error' && status < 300) deps.metrics.streamsInterrupted.inc({ route });
  deps.recorder.record({
    id: newId(),
    requestId: s.requestId,
    apiKeyId: key.id,
    userId: key.userId,
    upstreamKeyId: s.upstreamKeyId ?? null,
    route,
    model: s.model ?? null,
    promptTokens: counts.prompt,
    completionTokens: counts.completion,
    totalTokens: counts.total,
    estimated: counts.estimated,
    statusCode: status,
    errorCode: code,
    latencyMs: ended.latencyMs,
    stream: s.stream === true,
    createdAtMs: ended.atMs,
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

/**
 * Why the request failed, for the row: the proxy's own error code; `client_closed` when the client
 * left first (status 499); `upstream_error` for a stream the upstream broke off (the client got a
 * 200 and then the error event) or in which it reported an error itself; `upstream_<status>` for
 * an error answer relayed from upstream.
 */
function errorCode(
  status: number,
  failure: ApiError | undefined,
  s: { clientGone?: boolean; streamOutcome?: StreamOutcome; upstreamStreamError?: boolean },
): string | null {
  if (failure) return failure.code;
  if (s.clientGone) return 'client_closed';
  if (s.streamOutcome?.completed === false || s.upstreamStreamError) return 'upstream_error';
  return status >= 400 ? `upstream_${status}` : null;
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
