import type { Context } from 'koa';
import { type ApiKeyIdentity, mayUseModel } from '../../auth/api-key-auth.ts';
import { ApiError } from '../../errors.ts';
import { ClientGoneError, type Forwarder } from '../../upstream/forwarder.ts';
import { clientHeaders, isEventStream } from '../../upstream/response-headers.ts';
import type { Operation } from '../../upstream/types.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import { relayEventStream } from '../relay.ts';
import { validateBody } from './schemas.ts';

export interface ProxyDeps {
  forwarder: Forwarder;
  maxBodyBytes: number;
  /** Azure surface: the model a deployment name in the path stands for. */
  modelForDeployment: (deployment: string) => string;
}

/**
 * Proxies one OpenAI-style call: validates what the proxy relies on, checks the key may use the
 * model, forwards (with failover) and relays the answer — buffered JSON, or an event stream
 * forwarded event by event. `deployment` is set on the Azure-style routes.
 */
export async function proxyRequest(ctx: Context, deps: ProxyDeps, operation: Operation, deployment?: string) {
  const body = await readJsonBody(ctx, deps.maxBodyBytes);
  const valid = validateBody(operation, body.json, deployment !== undefined);
  const model = deployment !== undefined ? deps.modelForDeployment(deployment) : (valid.model as string);
  // The Azure surface names the model in the path; an OpenAI upstream needs it in the body.
  const raw = body.json.model === model ? body.raw : Buffer.from(JSON.stringify({ ...body.json, model }));
  const key = ctx.state.apiKey as ApiKeyIdentity;
  ctx.state.model = model;
  ctx.state.stream = valid.stream;
  ctx.state.promptBody = body.raw;
  if (!mayUseModel(key, model)) {
    throw new ApiError('model_not_found', `The model '${model}' does not exist or this key may not use it.`, {
      param: 'model',
    });
  }

  const abort = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) abort.abort();
  };
  ctx.res.once('close', onClose);
  try {
    const answer = await deps.forwarder.forward({
      operation,
      model,
      body: raw,
      method: 'POST',
      accept: valid.stream ? 'text/event-stream' : 'application/json',
      buffer: !valid.stream,
      signal: abort.signal,
    });
    ctx.state.upstreamKeyId = answer.key.id;
    ctx.state.attempts = answer.attempts;
    if (!Buffer.isBuffer(answer.body) && isEventStream(answer.headers)) {
      const outcome = await relayEventStream(ctx, { ...answer, body: answer.body }, abort);
      ctx.state.streamOutcome = outcome;
      return;
    }
    const buffered = Buffer.isBuffer(answer.body)
      ? answer.body
      : Buffer.from(await answer.body.arrayBuffer());
    ctx.status = answer.status;
    ctx.set(clientHeaders(answer.headers));
    ctx.body = buffered;
    ctx.state.completionBody = buffered;
  } catch (err) {
    if (err instanceof ClientGoneError) {
      ctx.state.clientGone = true;
      ctx.respond = false;
      return;
    }
    throw err;
  } finally {
    ctx.res.off('close', onClose);
  }
}
