import type { Context, Next } from 'koa';
import type { ApiKeyIdentity } from '../auth/api-key-auth.ts';
import { ApiError } from '../errors.ts';

/**
 * Lets only admin keys through. It runs after the proxy's key check, but fails closed on its
 * own: without an authenticated key in `ctx.state` it answers 401, so a router mounted without
 * authentication still refuses everyone.
 */
export async function requireAdmin(ctx: Context, next: Next): Promise<void> {
  const key = ctx.state.apiKey as ApiKeyIdentity | undefined;
  if (!key) throw new ApiError('invalid_api_key', 'The admin API needs an admin API key.');
  if (!key.isAdmin) {
    throw new ApiError(
      'insufficient_permissions',
      'This API key does not belong to an admin user; the admin API needs an admin key.',
    );
  }
  // Admin answers name users and keys: never let a shared cache keep them.
  ctx.set('Cache-Control', 'no-store');
  await next();
}
