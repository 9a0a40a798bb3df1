import type { Context } from 'koa';
import { DEPENDENCY_CHECK_TIMEOUT_MS } from '../../metrics/dependency-health.ts';

export type Check = () => Promise<unknown>;

async function healthy(check: Check, timeoutMs: number): Promise<'healthy' | 'unhealthy'> {
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref()),
    ]);
    return 'healthy';
  } catch {
    return 'unhealthy';
  }
}

/**
 * `GET /health`: the deployment guide's answer, 200 when Postgres and Redis both answer, else
 * 503 naming the one that did not — whatever RATE_LIMIT_FAIL_OPEN says about serving traffic.
 */
export function healthRoute(
  checks: { database: Check; redis: Check },
  timeoutMs = DEPENDENCY_CHECK_TIMEOUT_MS,
) {
  return async (ctx: Context) => {
    const [database, redis] = await Promise.all([
      healthy(checks.database, timeoutMs),
      healthy(checks.redis, timeoutMs),
    ]);
    const ok = database === 'healthy' && redis === 'healthy';
    ctx.status = ok ? 200 : 503;
    ctx.set('cache-control', 'no-store');
    ctx.body = { status: ok ? 'healthy' : 'unhealthy', services: { database, redis } };
  };
}

/** `GET /health/live`: the process serves. Container health checks use this one. */
export function liveRoute(ctx: Context): void {
  ctx.set('cache-control', 'no-store');
  ctx.body = { status: 'alive' };
}
