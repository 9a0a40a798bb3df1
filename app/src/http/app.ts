import Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import { adminConsole, adminRoutes } from '../admin/index.ts';
import type { Config } from '../config/index.ts';
import { ApiError } from '../errors.ts';
import { errorFields, type Logger } from '../log/logger.ts';
import { throttled } from '../log/throttled.ts';
import type { Services } from '../services.ts';
import type { LimitDeps } from './limits.ts';
import { authenticate } from './middleware/authenticate.ts';
import { edge } from './middleware/edge.ts';
import { recordUsage } from './middleware/usage.ts';
import { healthRoute, liveRoute } from './routes/health.ts';
import { modelsRoute } from './routes/models.ts';
import { type ProxyDeps, proxyRequest } from './routes/proxy.ts';

export interface AppOptions {
  services: Services;
  config: Pick<Config, 'server' | 'log' | 'rateLimit'>;
  logger: Logger;
  secrets: readonly string[];
  /** True once the process is draining: answers carry `Connection: close`. */
  draining?: () => boolean;
}

const OPENAI_ROUTES = ['chat/completions', 'completions', 'embeddings', 'responses'] as const;
const AZURE_ROUTES = ['chat/completions', 'completions', 'embeddings'] as const;

/** Builds the Koa application: middleware once, one handler per route, unknown URLs in OpenAI's error shape. */
export function buildApp(options: AppOptions): Koa {
  const { services, logger, secrets, config } = options;
  const app = new Koa();
  app.proxy = true;
  app.silent = true;

  const modelLabel = (m: string | undefined) => services.models.label(m);
  const limits: LimitDeps = {
    limiter: services.limiter,
    defaults: { rpm: config.rateLimit.rpm, tpm: config.rateLimit.tpm },
    failOpen: config.rateLimit.failOpen,
    metrics: services.metrics,
    onRedisError: throttled(
      (err) => logger.warn(errorFields(err, secrets), 'rate limiter cannot reach redis'),
      10_000,
    ),
  };
  const deps: ProxyDeps = {
    forwarder: services.forwarder,
    limits,
    maxBodyBytes: config.server.maxBodyBytes,
    defaultCompletionTokens: config.rateLimit.defaultCompletionTokens,
    logBodies: config.log.promptBody,
    modelsForDeployment: (d) => services.pool.modelsForDeployment(d),
  };
  const api = [
    authenticate(services.authenticator, services.lastUsed, logger, secrets),
    recordUsage({
      recorder: services.usage,
      limiter: services.limiter,
      defaults: limits.defaults,
      metrics: services.metrics,
      modelLabel,
      afterResponse: services.afterResponse,
    }),
  ];
  const router = new Router();
  router.get('/health', healthRoute(services.healthChecks));
  router.get('/health/live', liveRoute);
  router.get('/v1/models', ...api, modelsRoute(services.models, limits));
  // Each streaming route's count of interrupted streams exists from the start, at 0: an alert's
  // rate sees the first one (a series born at 1 shows no increase), and the dashboard a line.
  const streams = (route: string, op: string) => {
    if (op !== 'embeddings') services.metrics.streamsInterrupted.inc({ route }, 0);
  };
  const openai = new Map<string, Koa.Middleware>();
  for (const op of OPENAI_ROUTES) {
    const handle = compose([...api, (ctx: Koa.Context) => proxyRequest(ctx, deps, op)]);
    openai.set(`/v1/${op}`, handle);
    router.post(`/v1/${op}`, handle);
    streams(`/v1/${op}`, op);
  }
  for (const op of AZURE_ROUTES) {
    router.post(`/openai/deployments/:deployment/${op}`, ...api, (ctx) =>
      proxyRequest(ctx, deps, op, ctx.params.deployment),
    );
    streams(`/openai/deployments/:deployment/${op}`, op);
  }

  app.use(
    edge({
      logger,
      secrets,
      logBodies: config.log.promptBody,
      metrics: services.metrics,
      modelLabel,
      draining: options.draining,
      afterResponse: services.afterResponse,
      inFlight: services.inFlight,
    }),
  );
  app.use(exactPostRoutes(openai));
  app.use(router.routes());
  const requireKey = authenticate(services.authenticator, services.lastUsed, logger, secrets);
  app.use(adminRoutes({ ...services, logger, authenticate: requireKey }).routes());
  app.use(adminConsole());
  app.use((ctx) => {
    throw new ApiError('unknown_url', `Unknown request URL: ${ctx.method} ${ctx.path}.`);
  });
  return app;
}

/**
 * Serves a POST whose path is exactly one of `routes`, ahead of the router. The OpenAI routes carry
 * nearly all the traffic and have no parameters, while @koa/router, on every request, tests each
 * route's pattern and builds and composes the matched chain anew: about 10 µs of a 150–200 µs
 * request on the benchmark machine (bench/RESULTS.md). The same handlers stay registered
 * with the router, so the spellings it also accepts (a trailing slash, other letter case) are
 * served as before.
 */
function exactPostRoutes(routes: ReadonlyMap<string, Koa.Middleware>): Koa.Middleware {
  return function exactPostRoute(ctx, next) {
    const handle = ctx.method === 'POST' ? routes.get(ctx.path) : undefined;
    if (handle === undefined) return next();
    ctx._matchedRoute = ctx.path;
    return handle(ctx, next);
  };
}
