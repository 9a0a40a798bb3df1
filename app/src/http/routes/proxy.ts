import type { Context } from 'koa';
import { type ApiKeyIdentity, mayUseModel } from '../../auth/api-key-auth.ts';
import { ApiError, ClientGoneError } from '../../errors.ts';
import type { Forwarder } from '../../upstream/forwarder.ts';
import type { Operation } from '../../upstream/types.ts';
import type { UpstreamBody } from '../../upstream/upstream-request.ts';
import { StreamUsage, withUsageRequested } from '../../usage/stream-usage.ts';
import { completionBudget, estimatePromptTokens } from '../../usage/tokens.ts';
import { setHeaders } from '../headers.ts';
import { enforceLimits, type LimitDeps } from '../limits.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import { type EventFilter, followClient, relayEventStream } from '../relay.ts';
import { validateBody } from './schemas.ts';

export interface ProxyDeps {
  forwarder: Forwarder;
  limits: LimitDeps;
  maxBodyBytes: number;
  defaultCompletionTokens: number;
  /** LOG_PROMPT_BODY: keep the streamed events (bounded) for the access log too. */
  logBodies: boolean;
  /** Azure surface: the models a deployment name in the path stands for. */
  modelsForDeployment: (deployment: string) => string[];
}

/**
 * Proxies one OpenAI-style call: reads the body, charges the rate limits (the request plus a
 * token reservation), validates what the proxy relies on, checks the key may use the model,
 * forwards with failover and relays the answer — buffered JSON, or an event stream forwarded
 * event by event. For the usage recorder it leaves a stream's usage in `ctx.state.usage`, and a
 * JSON answer's body in `ctx.state.usageBody`, read after the response is out.
 * `deployment` is set on the Azure-style routes.
 */
export async function proxyRequest(ctx: Context, deps: ProxyDeps, operation: Operation, deployment?: string) {
  // The client is followed from the start: one that leaves while its key, body or rate limit is
  // still being looked at (Redis may take up to its command timeout) is never forwarded, and one
  // that leaves later cancels the upstream request at once.
  const abort = new AbortController();
  const onClose = followClient(ctx.res, abort);
  // One function, not a wrapper around an async one: each async layer costs every request a
  // promise and a suspended frame (see edge.ts).
  try {
    const body = await readJsonBody(ctx, deps.maxBodyBytes);
    const key = ctx.state.apiKey as ApiKeyIdentity;
    // A deployment may serve a model under two spellings: the one the key may use, if either.
    const named =
      deployment !== undefined
        ? deployedModelFor(key, deps.modelsForDeployment(deployment))
        : body.json.model;
    // Known before the limits and the validation, so that a request they refuse (429, 400) is
    // counted and recorded with its model and stream flag too; the metrics label stays bounded.
    if (typeof named === 'string') ctx.state.model = named;
    ctx.state.stream = body.json.stream === true;
    const promptEstimate = estimatePromptTokens(body.raw);
    ctx.state.promptEstimate = promptEstimate;
    ctx.state.promptBody = body.raw;
    const limited = enforceLimits(
      ctx,
      deps.limits,
      promptEstimate + completionBudget(operation, body.json, deps.defaultCompletionTokens),
    );
    if (limited !== undefined) await limited;
    if (abort.signal.aborted) throw new ClientGoneError();

    const valid = validateBody(operation, body.json, deployment !== undefined);
    // Validated: a non-empty string in the body, or the deployment's.
    const model = named as string;
    if (!mayUseModel(key, model)) {
      const message = `The model '${model}' does not exist or this key may not use it.`;
      throw new ApiError('model_not_found', message, { param: 'model' });
    }
    // The Azure surface names the model in the path (an OpenAI upstream needs it in the body), and
    // chat/completions streams are asked to report usage, except by an upstream that refuses to be
    // asked: it gets the client's body as it came, and the row is an estimate.
    const json = body.json.model === model ? body.json : { ...body.json, model };
    const asIs = json === body.json ? body.raw : undefined;
    const askUsage = valid.stream && operation !== 'responses' ? withUsageRequested(json, asIs) : undefined;
    const tracker = valid.stream ? new StreamUsage(operation, askUsage === undefined) : undefined;
    // Serialised anew only when the model changed, and for a stream asked for usage only once an
    // upstream refusing stream_options needs it (a second serialisation of the whole body).
    let plain = asIs;
    const plainBody = () => (plain ??= Buffer.from(JSON.stringify(json)));

    const answer = await deps.forwarder.forward({
      operation,
      model,
      body: askUsage?.body ?? plainBody(),
      plainBody: askUsage ? plainBody : undefined,
      method: 'POST',
      accept: valid.stream ? 'text/event-stream' : 'application/json',
      buffer: !valid.stream,
      signal: abort.signal,
    });
    ctx.state.upstreamKeyId = answer.key.id;
    ctx.state.attempts = answer.attempts;
    if (!Buffer.isBuffer(answer.body) && answer.eventStream && tracker) {
      const filter = deps.logBodies ? keepForLog(ctx, tracker.filterBlock) : tracker.filterBlock;
      // The time to first byte: the relay sends the headers (with the events already there) at once.
      ctx.state.answeredAt = performance.now();
      const outcome = await relayEventStream(ctx, { ...answer, body: answer.body }, abort, filter);
      ctx.state.streamOutcome = outcome;
      ctx.state.clientGone = outcome.clientGone;
      ctx.state.usage = tracker.usage;
      ctx.state.completionEstimate = tracker.contentEvents;
      if (tracker.upstreamFailed) ctx.state.upstreamStreamError = true;
      return;
    }
    const buffered = Buffer.isBuffer(answer.body) ? answer.body : await readRest(answer.body, abort.signal);
    ctx.status = answer.status;
    setHeaders(ctx, answer.clientHeaders);
    ctx.body = buffered;
    ctx.state.completionBody = buffered;
    // Koa writes it whole as soon as this returns: its first byte is its last.
    ctx.state.answeredAt = performance.now();
    // Read by the usage recorder once the response is out.
    if (answer.status < 300) ctx.state.usageBody = buffered;
  } finally {
    if (onClose) ctx.res.off('close', onClose);
  }
}

/** Of the models a deployment serves, the first the key may use (else the first: refused). */
function deployedModelFor(key: ApiKeyIdentity, models: string[]): string {
  return models.find((m) => mayUseModel(key, m)) ?? (models[0] as string);
}

/**
 * The rest of a 2xx answer that was asked for as a stream but is not one (a JSON body). Read after
 * the failover, so a failure here is the upstream's (502), or the client's leaving.
 */
async function readRest(body: UpstreamBody, signal: AbortSignal): Promise<Buffer> {
  try {
    return await body.bytes();
  } catch {
    if (signal.aborted) throw new ClientGoneError();
    throw new ApiError('upstream_error', 'The upstream connection failed while sending its answer.');
  }
}

const LOGGED_STREAM_LIMIT = 64 * 1024;

/** Wraps the relay's filter to also collect what was sent (up to 64 KiB) as the logged completion. */
function keepForLog(ctx: Context, filter: EventFilter): EventFilter {
  let kept = '';
  return (events) => {
    const out = filter(events);
    if (kept.length < LOGGED_STREAM_LIMIT) {
      kept += String(out);
      ctx.state.completionBody = kept.slice(0, LOGGED_STREAM_LIMIT);
    }
    return out;
  };
}
