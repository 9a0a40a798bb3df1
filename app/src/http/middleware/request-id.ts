import type { Context } from 'koa';
import { newId } from '../../crypto/ids.ts';

// nginx's $request_id is 32 hex characters; accept any similarly tame id, never arbitrary text,
// because it goes into logs and the usage table.
const ACCEPTABLE = /^[A-Za-z0-9._:-]{8,128}$/;

/** Adopts nginx's X-Request-Id (or makes one) and returns it on the response. */
export function adoptRequestId(ctx: Context): void {
  const given = ctx.get('x-request-id');
  const id = ACCEPTABLE.test(given) ? given : newId();
  ctx.state.requestId = id;
  ctx.res.setHeader('x-request-id', id); // not ctx.set: see setHeaders in ../headers.ts
}
