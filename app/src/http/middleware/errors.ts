import type { Context } from 'koa';
import { ApiError, INTERNAL_ERROR_MESSAGE } from '../../errors.ts';
import { errorFields, type Logger } from '../../log/logger.ts';

/**
 * The one renderer of errors: an ApiError becomes OpenAI's error JSON with its status; anything
 * else is a bug, logged with its (secret-free) details and answered with a generic 500. Errors
 * after the headers went out (a broken stream) cannot change the response and are only logged.
 */
export function renderError(ctx: Context, err: unknown, logger: Logger, secrets: readonly string[]): void {
  const apiError = err instanceof ApiError ? err : new ApiError('internal_error', INTERNAL_ERROR_MESSAGE);
  if (!(err instanceof ApiError)) {
    logger.error({ reqId: ctx.state.requestId, ...errorFields(err, secrets) }, 'unhandled error');
  }
  ctx.state.errorCode = apiError.code;
  if (ctx.headerSent || !ctx.writable) return;
  ctx.status = apiError.status;
  ctx.set(apiError.headers);
  ctx.body = apiError.toBody();
}
