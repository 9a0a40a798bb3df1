// Endpoint bodies: model/deployment resolution, per-endpoint validation, then JSON or SSE reply.
import type { Endpoint } from './control.ts';
import { azureModelList, embeddingsList, modelObject, modelsList } from './embeddings-format.ts';
import { azureErrors, openaiErrors } from './errors.ts';
import {
  chatCompletion,
  chatCompletionChunks,
  countTokens,
  type Generation,
  STREAM_ERROR_EVENT,
  splitAnswer,
  textCompletion,
  textCompletionChunks,
  textOf,
} from './openai-format.ts';
import { type Reply, sendError, sendJson, sendStream } from './respond.ts';
import { responseObject, responseStreamEvents } from './responses-format.ts';

type Body = Record<string, unknown>;

const isStringRecord = (v: unknown): v is Record<string, string> =>
  v !== null && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string');

const typeName = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

function resolveModel(ctx: Reply, body: Body, deployment: string | undefined): string | (() => void) {
  const { state } = ctx;
  if (ctx.rec.surface === 'azure-deployments') {
    const m = deployment === undefined ? undefined : state.deployments.get(deployment);
    return m ?? (() => sendError(ctx, azureErrors.deploymentNotFound()));
  }
  const requested = body.model;
  if (typeof requested !== 'string' || requested === '')
    return () => sendError(ctx, openaiErrors.missingModel());
  if (ctx.azure)
    return state.deployments.get(requested) ?? (() => sendError(ctx, azureErrors.deploymentNotFound()));
  if (!state.models.has(requested) && !state.allowUnknownModels) {
    return () => sendError(ctx, openaiErrors.modelNotFound(requested));
  }
  return state.modelAliases.get(requested) ?? requested;
}

function generation(
  ctx: Reply,
  model: string,
  body: Body,
  promptText: string,
  maxTokens: unknown,
): Generation {
  const all = splitAnswer(ctx.state.answer);
  const limit = typeof maxTokens === 'number' && maxTokens >= 0 ? maxTokens : all.length;
  const deltas = all.slice(0, limit);
  const opts = (body.stream_options ?? {}) as Record<string, unknown>;
  return {
    model,
    promptTokens: countTokens(promptText),
    deltas,
    finishReason: deltas.length < all.length ? 'length' : 'stop',
    includeUsage: opts.include_usage === true,
    azure: ctx.azure,
    obfuscation: opts.include_obfuscation !== false,
  };
}

/** error_mid_stream: a chat or completions stream's first frames, then OpenAI's error event. */
function failing(ctx: Reply, frames: string[]): string[] {
  const failure = ctx.streamError;
  return failure === undefined ? frames : [...frames.slice(0, failure.afterEvents), STREAM_ERROR_EVENT];
}

export async function buildReply(
  ctx: Reply,
  endpoint: Endpoint | undefined,
  body: Body,
  deployment: string | undefined,
  modelId: string | undefined,
): Promise<void> {
  const { state } = ctx;
  if (endpoint === 'models') {
    const ids = ctx.azure ? [...new Set(state.deployments.values())] : [...state.models];
    // The dated surface answers in Azure's own ModelList shape; the v1 surface in OpenAI's.
    return sendJson(
      ctx,
      200,
      ctx.rec.surface === 'azure-deployments' ? azureModelList(ids) : modelsList(ids),
    );
  }
  if (endpoint === 'model' || endpoint === undefined) {
    const id = modelId ?? '';
    const known = ctx.azure ? new Set(state.deployments.values()).has(id) : state.models.has(id);
    if (known || state.allowUnknownModels) return sendJson(ctx, 200, modelObject(id));
    return sendError(ctx, openaiErrors.retrieveModelNotFound(id));
  }
  const model = resolveModel(ctx, body, deployment);
  if (typeof model === 'function') return model();
  const asked = body.stream === true;
  const stream = asked && !ctx.ignoreStream;
  const hasStreamOptions = body.stream_options !== undefined && body.stream_options !== null;
  // Azure's dated versions learnt `stream_options` in 2024-09-01-preview (GA: 2024-10-21).
  const version = ctx.rec.query['api-version'] ?? '';
  if ('stream_options' in body && ctx.rec.surface === 'azure-deployments' && version < '2024-09-01') {
    return sendError(ctx, azureErrors.unrecognizedArgument('stream_options'));
  }
  if (hasStreamOptions && !asked && (endpoint === 'chat' || endpoint === 'completions')) {
    return sendError(ctx, openaiErrors.streamOptionsWithoutStream());
  }
  switch (endpoint) {
    case 'chat': {
      const messages = body.messages;
      if (messages === undefined) return sendError(ctx, openaiErrors.missingParam('messages'));
      if (!Array.isArray(messages)) {
        return sendError(
          ctx,
          openaiErrors.invalidType('messages', 'an array of objects', typeName(messages)),
        );
      }
      if (messages.length === 0) return sendError(ctx, openaiErrors.emptyArray('messages'));
      const g = generation(ctx, model, body, textOf(messages), body.max_completion_tokens ?? body.max_tokens);
      if (stream) return sendStream(ctx, failing(ctx, chatCompletionChunks(g)), g.promptTokens);
      return sendJson(ctx, 200, chatCompletion(g), g.promptTokens);
    }
    case 'completions': {
      if (body.prompt === undefined) return sendError(ctx, openaiErrors.missingParam('prompt'));
      // The legacy endpoint defaults max_tokens to 16.
      const g = generation(ctx, model, body, textOf(body.prompt), body.max_tokens ?? 16);
      if (stream) return sendStream(ctx, failing(ctx, textCompletionChunks(g)), g.promptTokens);
      return sendJson(ctx, 200, textCompletion(g), g.promptTokens);
    }
    case 'embeddings': {
      if (body.input === undefined) return sendError(ctx, openaiErrors.missingParam('input'));
      const reply = embeddingsList({
        model,
        input: body.input,
        dimensions: typeof body.dimensions === 'number' ? body.dimensions : undefined,
        base64: body.encoding_format === 'base64',
      });
      return sendJson(ctx, 200, reply);
    }
    case 'responses': {
      const promptText = textOf(body.instructions) + textOf(body.input);
      const g = generation(ctx, model, body, promptText, body.max_output_tokens);
      const echo = {
        instructions: typeof body.instructions === 'string' ? body.instructions : null,
        maxOutputTokens: typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null,
        temperature: typeof body.temperature === 'number' ? body.temperature : 1,
        topP: typeof body.top_p === 'number' ? body.top_p : 1,
        metadata: isStringRecord(body.metadata) ? body.metadata : {},
      };
      if (stream) return sendStream(ctx, responseStreamEvents(g, echo, ctx.streamError), g.promptTokens);
      return sendJson(ctx, 200, responseObject(g, echo), g.promptTokens);
    }
  }
}
