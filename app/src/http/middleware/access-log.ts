import type { Context, Next } from 'koa';
import type { Logger } from '../../log/logger.ts';

/**
 * One JSON line per request, written when the response (or stream) is finished: the request id,
 * route, status, timing, key and upstream key ids — never the credentials, and the prompt and
 * completion bodies only when LOG_PROMPT_BODY=true. The path is logged without its query.
 */
export function accessLog(logger: Logger, logBodies: boolean) {
  return async function log(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    try {
      await next();
    } finally {
      const s = ctx.state;
      const status = s.clientGone ? 499 : ctx.respond === false ? ctx.res.statusCode : ctx.status;
      const fields: Record<string, unknown> = {
        reqId: s.requestId,
        method: ctx.method,
        path: ctx.path,
        status,
        ms: Math.round(performance.now() - started),
        keyId: s.apiKey?.id,
        model: s.model,
        stream: s.stream,
        upstreamKeyId: s.upstreamKeyId,
        attempts: s.attempts,
        errorCode: s.errorCode,
      };
      if (s.streamOutcome) fields.streamCompleted = s.streamOutcome.completed;
      if (logBodies) {
        if (s.promptBody) fields.prompt = String(s.promptBody);
        if (s.completionBody) fields.completion = String(s.completionBody);
      }
      logger.info(fields, 'request');
    }
  };
}
