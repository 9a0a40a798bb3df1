import type { Context } from 'koa';
import type { ProxyMetrics } from '../../metrics/proxy-metrics.ts';

/**
 * Counts a finished request by route, status and (bounded) model, and records its duration to the
 * last byte and, for a request the upstream answered, to its first (`firstByteMs`).
 */
export function countRequest(
  metrics: Pick<ProxyMetrics, 'requests' | 'duration' | 'firstByte'>,
  ctx: Context,
  status: number,
  ms: number,
  firstByteMs: number | undefined,
  modelLabel: (m: string | undefined) => string,
): void {
  const route = ctx._matchedRoute ? String(ctx._matchedRoute) : 'unmatched';
  metrics.requests.inc({ route, status: String(status), model: modelLabel(ctx.state.model) });
  const labels = { route, stream: String(ctx.state.stream === true) };
  metrics.duration.observe(labels, ms / 1000);
  if (firstByteMs !== undefined) metrics.firstByte.observe(labels, firstByteMs / 1000);
}
