// Writing replies: service-specific headers, JSON bodies, SSE streams (latch, delays, mid-stream failure).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { type FakeState, now, type RecordedRequest } from './control.ts';
import type { ErrorReply } from './errors.ts';
import type { JsonObject } from './openai-format.ts';

/** Per-request context. */
export interface Reply {
  state: FakeState;
  req: IncomingMessage;
  res: ServerResponse;
  rec: RecordedRequest;
  azure: boolean;
  requestId: string;
  startedAt: number;
  signal: AbortSignal;
  closed: Promise<unknown>;
  /** fail_mid_stream: frames to send before destroying the socket. */
  failAfter: number | undefined;
  /** Answer in JSON even when the request asked for a stream. */
  ignoreStream: boolean;
  /** error_mid_stream: frames to send before the upstream's error event, and which one (Responses). */
  streamError: { afterEvents: number; as: 'error' | 'failed' } | undefined;
  selfDestroyed: boolean;
}

export const newRequestId = (azure: boolean): string =>
  azure ? randomUUID() : `req_${randomUUID().replaceAll('-', '')}`;

function cookies(): string[] {
  const expires = new Date(Date.now() + 30 * 60_000).toUTCString();
  const bm = randomUUID().replaceAll('-', '');
  return [
    `__cf_bm=${bm}-${Math.floor(Date.now() / 1000)}-1.0.1.1-fake; path=/; expires=${expires}; domain=.api.openai.com; HttpOnly; Secure; SameSite=None`,
    `_cfuvid=${bm.slice(0, 16)}-${Date.now()}-0.0.1.1-604800000; path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None`,
  ];
}

function headersFor(ctx: Reply, ok: boolean, promptTokens: number): OutgoingHttpHeaders {
  const common: OutgoingHttpHeaders = {
    'x-request-id': ctx.requestId,
    'strict-transport-security': 'max-age=31536000; includeSubDomains; preload',
    'x-content-type-options': 'nosniff',
  };
  if (ctx.azure) {
    const h: OutgoingHttpHeaders = {
      ...common,
      'apim-request-id': ctx.requestId,
      'x-ms-region': ctx.state.region,
    };
    const clientId = ctx.req.headers['x-ms-client-request-id'];
    if (typeof clientId === 'string') h['x-ms-client-request-id'] = clientId;
    if (!ok) return h;
    return {
      ...h,
      'x-ratelimit-remaining-requests': '99',
      'x-ratelimit-remaining-tokens': String(Math.max(0, 100_000 - promptTokens)),
      'x-ms-rai-invoked': 'true',
      'azureml-model-session': 'd-fake-0001',
    };
  }
  const h: OutgoingHttpHeaders = {
    ...common,
    'openai-processing-ms': String(Math.round(now() - ctx.startedAt)),
    'openai-version': '2020-10-01',
    'access-control-expose-headers': 'X-Request-ID',
    'cf-cache-status': 'DYNAMIC',
    'set-cookie': cookies(),
    server: 'cloudflare',
    'cf-ray': `${ctx.requestId.slice(4, 20)}-SJC`,
    'alt-svc': 'h3=":443"; ma=86400',
  };
  if (!ok) return h;
  return {
    ...h,
    'openai-organization': ctx.state.organization,
    'openai-project': ctx.state.project,
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-remaining-requests': '9999',
    'x-ratelimit-reset-requests': '6ms',
    'x-ratelimit-limit-tokens': '30000000',
    'x-ratelimit-remaining-tokens': String(30_000_000 - promptTokens),
    'x-ratelimit-reset-tokens': '0s',
  };
}

export function destroy(ctx: Reply): void {
  ctx.selfDestroyed = true;
  ctx.res.destroy();
}

/** Writes `data`, then destroys the socket once it has been flushed (a plain destroy would drop it). */
function writeThenDestroy(ctx: Reply, data: string): void {
  ctx.selfDestroyed = true;
  ctx.res.write(data, () => ctx.res.destroy());
}

/** Abortable sleep: resolves early (without throwing) when the connection closes. */
export async function sleep(ctx: Reply, ms: number): Promise<void> {
  await sleepMs(ms, undefined, { signal: ctx.signal }).catch(() => {});
}

function writeHead(ctx: Reply, status: number, headers: OutgoingHttpHeaders): void {
  ctx.rec.status = status;
  ctx.rec.firstByteAt = now();
  ctx.res.writeHead(status, headers);
}

export function sendJson(ctx: Reply, status: number, body: JsonObject, promptTokens = 0): void {
  if (ctx.res.destroyed) return;
  const payload = JSON.stringify(body);
  const headers = headersFor(ctx, status < 400, promptTokens);
  headers['content-type'] = 'application/json';
  headers['content-length'] = Buffer.byteLength(payload);
  writeHead(ctx, status, headers);
  if (ctx.failAfter !== undefined) {
    writeThenDestroy(ctx, payload.slice(0, payload.length >> 1));
    return;
  }
  ctx.res.end(payload);
}

export function sendError(ctx: Reply, err: ErrorReply): void {
  if (ctx.res.destroyed) return;
  const payload = JSON.stringify(err.body);
  const headers = { ...headersFor(ctx, false, 0), ...err.headers };
  headers['content-type'] = 'application/json';
  headers['content-length'] = Buffer.byteLength(payload);
  writeHead(ctx, err.status, headers);
  ctx.res.end(payload);
}

/** Writes each SSE frame separately; holds after the first frame while a latch is held. */
export async function sendStream(ctx: Reply, frames: readonly string[], promptTokens: number): Promise<void> {
  const { res, state } = ctx;
  if (res.destroyed) return;
  const headers = headersFor(ctx, true, promptTokens);
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  headers.connection = 'keep-alive';
  writeHead(ctx, 200, headers);
  const latch = state.latch;
  const limit = ctx.failAfter === undefined ? frames.length : Math.min(ctx.failAfter, frames.length);
  for (let i = 0; i < limit; i++) {
    if (res.destroyed) return;
    if (i > 0 && state.deltaDelayMs > 0) await sleep(ctx, state.deltaDelayMs);
    if (res.destroyed) return;
    if (ctx.failAfter !== undefined && i === limit - 1) return writeThenDestroy(ctx, frames[i] ?? '');
    res.write(frames[i]);
    if (i === 0 && latch !== undefined && !latch.released) await latch.hold(ctx.closed);
  }
  if (res.destroyed) return;
  if (ctx.failAfter !== undefined) destroy(ctx);
  else res.end();
}
