import Router from '@koa/router';
import { z } from 'zod';
import type { ApiKeyIdentity } from '../auth/api-key-auth.ts';
import { requireAdmin } from './guard.ts';
import { keyRoutes } from './keys.ts';
import { requestRoutes } from './requests.ts';
import type { AdminDeps, AdminRoute, Method } from './route.ts';
import { upstreamKeyRoutes } from './upstream-keys.ts';
import { usageRoutes } from './usage.ts';
import { userRoutes } from './users.ts';
import { parseBody, parseId, parseQuery } from './validation.ts';

export { adminConsole, CONSOLE_CSP, CONSOLE_DIR } from './console.ts';
export type { AdminDeps, AdminRoute } from './route.ts';

export const ADMIN_PREFIX = '/admin/v1';

// Routes without query parameters refuse any, so a misspelt filter is an error, not ignored.
const NO_QUERY = z.strictObject({});

/** Every admin route with its schemas, in the order they are registered. */
export const ADMIN_ROUTES: readonly AdminRoute[] = [
  ...userRoutes,
  ...keyRoutes,
  ...upstreamKeyRoutes,
  ...usageRoutes,
  ...requestRoutes,
];

/**
 * The admin API as a router mounted at /admin/v1. Every route runs the proxy's key check, then
 * the admin check, before anything reads the path, query or body, so an outsider learns nothing
 * from validation errors. The router validates each request against the route's own schemas and
 * renders the handler's value as JSON.
 */
export function adminRoutes(deps: AdminDeps): Router {
  const router = new Router({ prefix: ADMIN_PREFIX });
  for (const route of ADMIN_ROUTES) {
    const method = route.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete';
    router[method](route.path, deps.authenticate, requireAdmin, async (ctx) => {
      const id = route.path.includes(':id') ? parseId(ctx.params.id) : 0;
      const query = parseQuery(ctx, route.query ?? NO_QUERY);
      const body = route.body ? await parseBody(ctx, route.body) : undefined;
      const caller = ctx.state.apiKey as ApiKeyIdentity;
      const result = await route.handle({ ctx, id, query, body, caller, deps });
      ctx.status = route.status ?? 200;
      ctx.body = result;
    });
  }
  return router;
}

/** The routes a router actually serves, as `{method, path}` (HEAD, added by Koa for GET, left out). */
export function routeList(router: Router): Array<{ method: Method; path: string }> {
  const routes: Array<{ method: Method; path: string }> = [];
  for (const layer of router.stack) {
    for (const method of layer.methods) {
      if (method !== 'HEAD') routes.push({ method: method as Method, path: String(layer.path) });
    }
  }
  return routes;
}
