import type { Context } from 'koa';

/**
 * Sets response headers the proxy built itself (lower-case names, string values) straight on the
 * response. Koa's `ctx.set(object)` normalises every entry through two intermediate arrays first,
 * which on the hot path cost about as much as the header itself; these never need it.
 */
export function setHeaders(ctx: Context, headers: Readonly<Record<string, string>>): void {
  const res = ctx.res;
  for (const name in headers) res.setHeader(name, headers[name] as string);
}
