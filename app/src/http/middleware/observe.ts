import type { Context, Next } from 'koa';
import type { ProxyMetrics } from '../../metrics/proxy-metrics.ts';

/** Counts every request by route, status and (bounded) model, and times it to its last byte. */
export function observe(
  metrics: Pick<ProxyMetrics, 'requests' | 'duration'>,
  modelLabel: (m: string | undefined) => string,
) {
  return async function measure(ctx: Context, next: Next): Promise<void> {
    const end = metrics.duration.startTimer();
    try {
      await next();
    } finally {
      const route = ctx._matchedRoute ? String(ctx._matchedRoute) : 'unmatched';
      const status = ctx.state.clientGone ? 499 : ctx.respond === false ? ctx.res.statusCode : ctx.status;
      metrics.requests.inc({ route, status: String(status), model: modelLabel(ctx.state.model) });
      end({ route, stream: String(ctx.state.stream === true) });
    }
  };
}
