import type { Context, Next } from 'koa';
import type { ApiKeyAuthenticator } from '../../auth/api-key-auth.ts';
import type { LastUsedRecorder } from '../../auth/last-used.ts';
import { ApiError } from '../../errors.ts';
import { errorFields, type Logger } from '../../log/logger.ts';

const MESSAGES = {
  missing:
    "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY' or in the 'api-key' header.",
  unknown: 'Incorrect API key provided.',
  revoked: 'This API key has been revoked.',
  expired: 'This API key has expired.',
  user_disabled: 'The user this API key belongs to is disabled.',
} as const;

/** The key a client presented: OpenAI SDKs send a Bearer token, Azure SDKs an `api-key` header. */
export function presentedKey(ctx: Context): string | undefined {
  const auth = ctx.get('authorization');
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
  if (bearer) return bearer;
  const apiKey = ctx.get('api-key').trim();
  return apiKey === '' ? undefined : apiKey;
}

/** Requires a valid proxy key and puts its identity in `ctx.state.apiKey`. */
export function authenticate(
  authenticator: ApiKeyAuthenticator,
  lastUsed: LastUsedRecorder,
  logger: Logger,
  secrets: readonly string[],
) {
  return async function requireKey(ctx: Context, next: Next): Promise<void> {
    const key = presentedKey(ctx);
    if (!key) throw new ApiError('invalid_api_key', MESSAGES.missing);
    let result: Awaited<ReturnType<ApiKeyAuthenticator['authenticate']>>;
    try {
      // A cached lookup answers at once; only a miss waits for Postgres.
      result = authenticator.authenticateCached(key) ?? (await authenticator.authenticate(key));
    } catch (err) {
      logger.error({ reqId: ctx.state.requestId, ...errorFields(err, secrets) }, 'API key lookup failed');
      throw new ApiError('upstream_unavailable', 'API keys cannot be verified right now; retry shortly.');
    }
    if (!result.valid) throw new ApiError('invalid_api_key', MESSAGES[result.reason]);
    ctx.state.apiKey = result.key;
    lastUsed.touch(result.key.id);
    await next();
  };
}
