import Router from '@koa/router';
import Koa from 'koa';
import { ApiError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Services } from '../services.ts';
import { accessLog } from './middleware/access-log.ts';
import { authenticate } from './middleware/authenticate.ts';
import { renderErrors } from './middleware/errors.ts';
import { requestId } from './middleware/request-id.ts';
import { healthRoute, liveRoute } from './routes/health.ts';
import { modelsRoute } from './routes/models.ts';
import { type ProxyDeps, proxyRequest } from './routes/proxy.ts';

export interface AppOptions {
  services: Services;
  logger: Logger;
  secrets: readonly string[];
  maxBodyBytes: number;
  logBodies: boolean;
}

const OPENAI_ROUTES = ['chat/completions', 'completions', 'embeddings', 'responses'] as const;
const AZURE_ROUTES = ['chat/completions', 'completions', 'embeddings'] as const;

/** Builds the Koa application: middleware once, one handler per route, unknown URLs in OpenAI's error shape. */
export function buildApp(options: AppOptions): Koa {
  const { services, logger, secrets } = options;
  const app = new Koa();
  app.proxy = true;
  app.silent = true;

  const deps: ProxyDeps = {
    forwarder: services.forwarder,
    maxBodyBytes: options.maxBodyBytes,
    modelForDeployment: (d) => services.pool.modelForDeployment(d),
  };
  const requireKey = authenticate(services.authenticator, services.lastUsed, logger, secrets);
  const router = new Router();
  router.get('/health', healthRoute(services.healthChecks));
  router.get('/health/live', liveRoute);
  router.get('/v1/models', requireKey, modelsRoute(services.models));
  for (const op of OPENAI_ROUTES) {
    router.post(`/v1/${op}`, requireKey, (ctx) => proxyRequest(ctx, deps, op));
  }
  for (const op of AZURE_ROUTES) {
    router.post(`/openai/deployments/:deployment/${op}`, requireKey, (ctx) =>
      proxyRequest(ctx, deps, op, ctx.params.deployment),
    );
  }

  app.use(requestId);
  app.use(accessLog(logger, options.logBodies));
  app.use(renderErrors(logger, secrets));
  app.use(router.routes());
  app.use((ctx) => {
    throw new ApiError('unknown_url', `Unknown request URL: ${ctx.method} ${ctx.path}.`);
  });
  return app;
}
