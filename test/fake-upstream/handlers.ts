// Request handling: body reading, request log, key behaviours, then the endpoint reply.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  consumeBehavior,
  type Endpoint,
  type FakeState,
  type KeyBehavior,
  now,
  type RecordedRequest,
  type RequestOutcome,
} from './control.ts';
import { azureErrors, type ErrorReply, openaiErrors } from './errors.ts';
import { buildReply } from './generate.ts';
import { destroy, newRequestId, type Reply, sendError, sleep } from './respond.ts';
import { extractKey, gatewayError, matchRoute, type Route } from './routes.ts';

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
    req.on('close', () => {
      if (!req.complete) resolve(undefined);
    });
  });
}

function parseJson(raw: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const CLOSED = new Error('connection closed');

const OPERATIONS: Record<Endpoint, string> = {
  chat: 'ChatCompletions_Create',
  completions: 'Completions_Create',
  embeddings: 'Embeddings_Create',
  responses: 'Responses_Create',
  models: 'Models_List',
  model: 'Models_Get',
};

function behaviorError(
  ctx: Reply,
  route: Route,
  key: string,
  behavior: KeyBehavior,
): ErrorReply | 'hang' | 'reset' | undefined {
  ctx.rec.behavior = behavior.kind;
  const model = typeof ctx.rec.body?.model === 'string' ? ctx.rec.body.model : 'gpt-4o-mini';
  const apiVersion = new URLSearchParams(ctx.rec.query).get('api-version') ?? 'v1';
  const op = OPERATIONS[route.endpoint ?? 'chat'];
  switch (behavior.kind) {
    case 'ok':
      return undefined;
    case 'invalid_key':
      return ctx.azure ? azureErrors.invalidKey() : openaiErrors.invalidKey(key);
    case 'rate_limited': {
      const secs = behavior.retryAfterSeconds ?? 1;
      const { reset, retryAfter } = behavior;
      return ctx.azure
        ? azureErrors.rateLimited(op, apiVersion, secs, { retryAfter })
        : openaiErrors.rateLimited(model, secs, behavior.limitType ?? 'requests', { reset, retryAfter });
    }
    case 'insufficient_quota':
      return ctx.azure ? azureErrors.quotaExceeded() : openaiErrors.insufficientQuota();
    case 'forbidden':
      return ctx.azure ? azureErrors.forbidden() : openaiErrors.forbidden();
    case 'model_no_access':
      return ctx.azure
        ? azureErrors.deploymentNotFound()
        : openaiErrors.projectModelAccess(ctx.state.project, model);
    case 'content_filter':
      return ctx.azure ? azureErrors.contentFilter() : openaiErrors.invalidPrompt();
    case 'server_error':
      return ctx.azure ? azureErrors.serverError() : openaiErrors.serverError(ctx.requestId);
    case 'overloaded':
      return ctx.azure ? azureErrors.overloaded() : openaiErrors.overloaded();
    case 'hang':
    case 'reset':
      return behavior.kind;
    case 'fail_mid_stream':
      ctx.failAfter = behavior.afterEvents ?? 2;
      ctx.ignoreStream = behavior.asJson === true;
      return undefined;
    case 'error_mid_stream':
      ctx.streamError = { afterEvents: behavior.afterEvents ?? 2, as: behavior.as ?? 'error' };
      return undefined;
    case 'slow_first_byte':
      return undefined;
  }
}

export async function handleRequest(
  state: FakeState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const startedAt = now();
  const abort = new AbortController();
  let resolveClosed: (o: RequestOutcome) => void = () => {};
  const closed = new Promise<RequestOutcome>((r) => {
    resolveClosed = r;
  });
  state.inflight.add(closed);
  let ctx: Reply | undefined;
  let closedAs: RequestOutcome | undefined;
  const settle = (rec: RecordedRequest, outcome: RequestOutcome): void => {
    rec.outcome = outcome;
    rec.aborted = outcome === 'aborted';
    rec.endedAt = now();
  };
  res.on('error', () => {});
  res.on('close', () => {
    abort.abort(CLOSED); // a static reason: the default DOMException is costly per request
    closedAs = 'finished';
    if (!res.writableFinished) closedAs = ctx?.selfDestroyed || state.closing ? 'destroyed' : 'aborted';
    if (ctx !== undefined) settle(ctx.rec, closedAs);
    resolveClosed(closedAs);
    state.inflight.delete(closed);
    state.waiters.notify();
  });

  // undefined: the client went away before the body was complete (still recorded, as aborted).
  const raw = await readBody(req);
  const url = new URL(req.url ?? '/', 'http://fake');
  const method = req.method ?? 'GET';
  const path = url.pathname.startsWith(state.pathPrefix)
    ? url.pathname.slice(state.pathPrefix.length)
    : url.pathname;
  const route = matchRoute(path);
  const key = extractKey(req, route.surface);
  const body = method === 'POST' && raw !== undefined ? parseJson(raw) : undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const rec: RecordedRequest = {
    seq: ++state.seq,
    method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers,
    rawBody: raw ?? '',
    body,
    key,
    surface: route.surface,
    endpoint: route.endpoint,
    deployment:
      route.deployment ??
      (route.surface === 'azure-v1' && typeof body?.model === 'string' ? body.model : undefined),
    stream: body?.stream === true,
    behavior: 'ok',
    status: undefined,
    outcome: 'pending',
    aborted: false,
    receivedAt: startedAt,
    firstByteAt: undefined,
    endedAt: undefined,
    closed,
  };
  const azure = route.surface !== 'openai';
  ctx = {
    state,
    req,
    res,
    rec,
    azure,
    requestId: newRequestId(azure),
    startedAt,
    signal: abort.signal,
    closed,
    failAfter: undefined,
    ignoreStream: false,
    streamError: undefined,
    selfDestroyed: false,
  };
  if (closedAs !== undefined) settle(rec, closedAs);
  if (state.record) state.requests.push(rec);
  state.waiters.notify();
  if (raw === undefined || closedAs !== undefined) return;

  const gwError = gatewayError(route, method, path, url.searchParams, key);
  if (gwError !== undefined || key === undefined) return sendError(ctx, gwError ?? azureErrors.missingKey());
  const behavior = consumeBehavior(state, key);
  const outcome = behaviorError(ctx, route, key, behavior);
  if (outcome === 'hang') return;
  if (outcome === 'reset') return destroy(ctx);
  if (outcome !== undefined) return sendError(ctx, outcome);
  if (behavior.kind === 'slow_first_byte') await sleep(ctx, behavior.ms);
  if (res.destroyed) return;
  if (method === 'POST' && body === undefined) return sendError(ctx, openaiErrors.invalidJson());
  await buildReply(ctx, route.endpoint, body ?? {}, route.deployment, route.modelId);
}
