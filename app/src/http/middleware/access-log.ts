import type { Context } from 'koa';

/**
 * One JSON line per request, written when the response (or stream) is finished: the request id,
 * route, status, timing, key and upstream key ids — never the credentials, and the prompt and
 * completion bodies only when LOG_PROMPT_BODY=true. The path is logged without its query.
 * `write` is the logger's writer for lines with the message `request` (`fixedLineWriter`).
 */
export function logRequest(
  write: (fields: Record<string, unknown>) => void,
  ctx: Context,
  status: number,
  ms: number,
  logBodies: boolean,
): void {
  const s = ctx.state;
  const fields: Record<string, unknown> = {
    reqId: s.requestId,
    method: ctx.method,
    path: ctx.path,
    status,
    ms: Math.round(ms),
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
  write(fields);
}
