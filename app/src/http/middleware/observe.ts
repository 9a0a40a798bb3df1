import type { Context } from 'koa';
import type { ProxyMetrics } from '../../metrics/proxy-metrics.ts';

/** Counts a finished request by route, status and (bounded) model, and records its duration to the last byte. */
export function countRequest(
  metrics: Pick<ProxyMetrics, 'requests' | 'duration'>,
  ctx: Context,
  status: number,
  ms: number,
  modelLabel: (m: string | undefined) => string,
): void {
  const route = ctx._matchedRoute ? String(ctx._matchedRoute) : 'unmatched';
  metrics.requests.inc({ route, status: String(status), model: modelLabel(ctx.state.model) });
  metrics.duration.observe({ route, stream: String(ctx.state.stream === true) }, ms / 1000);
}
