// Responses API (/v1/responses) bodies and its named-event SSE stream (no trailing [DONE]).
import {
  type Generation,
  type Json,
  type JsonObject,
  nowSeconds,
  obfuscationPad,
  randomId,
  SERVER_ERROR_MESSAGE,
  sseEvent,
} from './openai-format.ts';

export interface ResponsesRequestEcho {
  instructions: string | null;
  maxOutputTokens: number | null;
  temperature: number;
  topP: number;
  metadata: JsonObject;
}

interface Ids {
  responseId: string;
  messageId: string;
  createdAt: number;
}

function responseUsage(g: Generation): JsonObject {
  const output = g.deltas.length;
  return {
    input_tokens: g.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: g.promptTokens + output,
  };
}

const textPart = (text: string): JsonObject => ({ type: 'output_text', annotations: [], logprobs: [], text });

function messageItem(ids: Ids, g: Generation, done: boolean): JsonObject {
  return {
    id: ids.messageId,
    type: 'message',
    status: done ? 'completed' : 'in_progress',
    content: done ? [textPart(g.deltas.join(''))] : [],
    role: 'assistant',
  };
}

function responseBody(ids: Ids, g: Generation, echo: ResponsesRequestEcho, done: boolean): JsonObject {
  const truncated = g.finishReason === 'length';
  const status = !done ? 'in_progress' : truncated ? 'incomplete' : 'completed';
  return {
    id: ids.responseId,
    object: 'response',
    created_at: ids.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: done && truncated ? { reason: 'max_output_tokens' } : null,
    instructions: echo.instructions,
    max_output_tokens: echo.maxOutputTokens,
    model: g.model,
    output: done ? [messageItem(ids, g, true)] : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: true,
    temperature: echo.temperature,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: [],
    top_p: echo.topP,
    truncation: 'disabled',
    usage: done ? responseUsage(g) : null,
    user: null,
    metadata: echo.metadata,
  };
}

const newIds = (): Ids => ({
  responseId: randomId('resp_', 48),
  messageId: randomId('msg_', 48),
  createdAt: nowSeconds(),
});

export function responseObject(g: Generation, echo: ResponsesRequestEcho): JsonObject {
  return responseBody(newIds(), g, echo, true);
}

/**
 * SSE frames: created, in_progress, item/part added, N text deltas, text/part/item done, completed.
 * `failure`: the first `afterEvents` of them, then the stream fails as OpenAI reports it: an
 * `error` event (type, code, message, param, sequence_number), or `response.failed` (the response,
 * status `failed`, with its `error`).
 */
export function responseStreamEvents(
  g: Generation,
  echo: ResponsesRequestEcho,
  failure?: { afterEvents: number; as: 'error' | 'failed' },
): string[] {
  const ids = newIds();
  const frames: string[] = [];
  const emit = (type: string, payload: JsonObject): void => {
    frames.push(sseEvent(type, { type, sequence_number: frames.length, ...payload }));
  };
  const loc = { item_id: ids.messageId, output_index: 0, content_index: 0 };
  const text = g.deltas.join('');
  emit('response.created', { response: responseBody(ids, g, echo, false) });
  emit('response.in_progress', { response: responseBody(ids, g, echo, false) });
  emit('response.output_item.added', { output_index: 0, item: messageItem(ids, g, false) });
  emit('response.content_part.added', { ...loc, part: textPart('') });
  for (const delta of g.deltas) {
    const pad: Record<string, Json> = g.obfuscation && !g.azure ? { obfuscation: obfuscationPad(delta) } : {};
    emit('response.output_text.delta', { ...loc, delta, logprobs: [], ...pad });
  }
  emit('response.output_text.done', { ...loc, text, logprobs: [] });
  emit('response.content_part.done', { ...loc, part: textPart(text) });
  emit('response.output_item.done', { output_index: 0, item: messageItem(ids, g, true) });
  const final = responseBody(ids, g, echo, true);
  emit(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
  if (failure === undefined) return frames;
  frames.length = Math.min(failure.afterEvents, frames.length);
  if (failure.as === 'error') {
    emit('error', { code: 'server_error', message: SERVER_ERROR_MESSAGE, param: null });
  } else {
    const error = { code: 'server_error', message: SERVER_ERROR_MESSAGE };
    emit('response.failed', { response: { ...responseBody(ids, g, echo, false), status: 'failed', error } });
  }
  return frames;
}
