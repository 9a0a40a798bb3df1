import type { Context, Next } from 'koa';
import type pg from 'pg';
import type { z } from 'zod';
import type { ApiKeyIdentity } from '../auth/api-key-auth.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Logger } from '../log/logger.ts';

/** What the admin routes need, injected once when the router is built. */
export interface AdminDeps {
  db: pg.Pool;
  /** Dropped after every change to keys or users, so this instance sees it at once. */
  authenticator: { invalidate(): void };
  box: SecretBox;
  /** Re-read after an upstream key change; other instances see it on their own refresh timer. */
  pool?: { refresh(): Promise<void> };
  logger: Logger;
  /** The proxy's key check (sets `ctx.state.apiKey`); the admin check runs after it. */
  authenticate: (ctx: Context, next: Next) => Promise<void>;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** A validated request: the `{id}` path segment, the query and the body, typed by their schemas. */
export interface RouteInput<Q, B> {
  ctx: Context;
  /** The path's `{id}`; 0 on routes without one. */
  id: number;
  query: Q;
  body: B;
  /** The admin key making the request. */
  caller: ApiKeyIdentity;
  deps: AdminDeps;
}

/**
 * One admin route: method, path (Koa style, `:id`), the schemas of its query and body, and what
 * it answers. The schemas live here rather than inside the handler so the router validates every
 * route the same way and the OpenAPI test can compare parameter names against them.
 */
export interface AdminRoute {
  method: Method;
  path: string;
  summary: string;
  query?: z.ZodObject;
  body?: z.ZodObject;
  /** Status of a successful answer (default 200). */
  status?: number;
  handle(input: RouteInput<unknown, unknown>): Promise<unknown>;
}

interface RouteDef<Q extends z.ZodObject, B extends z.ZodObject> {
  method: Method;
  path: string;
  summary: string;
  query?: Q;
  body?: B;
  status?: number;
  handle(input: RouteInput<z.infer<Q>, z.infer<B>>): Promise<unknown>;
}

/** Declares a route with its handler typed by its own schemas. */
export function defineRoute<Q extends z.ZodObject = z.ZodObject, B extends z.ZodObject = z.ZodObject>(
  def: RouteDef<Q, B>,
): AdminRoute {
  return def as AdminRoute;
}

/** Postgres' unique_violation, for turning a race on a unique column into a clear 400. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

/**
 * One log line per change made through the admin API: who (the admin key's id), what, and on
 * which row. Only field names are logged, never values, so no key or email lands in the log.
 */
export function audit(
  input: RouteInput<unknown, unknown>,
  action: string,
  targetId: unknown,
  changed?: object,
): void {
  input.deps.logger.info(
    {
      reqId: input.ctx.state.requestId,
      adminKeyId: input.caller.id,
      action,
      targetId,
      ...(changed ? { fields: Object.keys(changed) } : {}),
    },
    'admin change',
  );
}
