// Builders for OpenAI wire-format bodies and SSE frames (chat, legacy completions, embeddings, models).
// The Responses API lives in responses-format.ts. Everything here is deterministic except ids/timestamps.
//
// Token rule (documented, deterministic): prompt tokens = max(1, ceil(chars / 4)) over all textual input
// (message contents / prompt / embedding inputs / instructions; token-id arrays count one per id);
// completion tokens = number of content deltas emitted (after max_tokens truncation).
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const DEFAULT_ANSWER = 'Hello from the fake upstream.';
export const SYSTEM_FINGERPRINT = 'fp_f4ke0a1b2c';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Not cryptographic: ids only need to look real and be unique enough for tests. */
export function randomId(prefix: string, length = 29): string {
  let out = prefix;
  for (let i = 0; i < length; i++) out += ALNUM[Math.floor(Math.random() * ALNUM.length)];
  return out;
}
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Splits the answer into OpenAI-like deltas ("Hello", " from", " the", ...). Concatenation == text. */
export function splitAnswer(text: string): string[] {
  const parts = text.match(/\s*[\p{L}\p{N}_'-]+|\s*[^\p{L}\p{N}_'\s-]|\s+$/gu) ?? [];
  return parts.join('') === text ? parts : [text];
}

/** Concatenated text of any OpenAI input shape: string, string[], token ids, messages, content parts. */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return 'xxxx'; // a token id counts as one token
  if (Array.isArray(value)) return value.map(textOf).join('');
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ('content' in o) return textOf(o.content);
    if (typeof o.text === 'string') return o.text;
  }
  return '';
}
export const countTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4));

/** What a chat/completions/responses reply is built from. */
export interface Generation {
  model: string;
  promptTokens: number;
  deltas: string[];
  finishReason: 'stop' | 'length';
  includeUsage: boolean;
  /** Azure adds prompt_filter_results / content_filter_results and omits `obfuscation`. */
  azure: boolean;
  /** OpenAI pads stream deltas with `obfuscation` unless stream_options.include_obfuscation === false. */
  obfuscation: boolean;
}

export const sseData = (payload: Json | '[DONE]'): string =>
  `data: ${payload === '[DONE]' ? payload : JSON.stringify(payload)}\n\n`;
export const sseEvent = (name: string, payload: Json): string =>
  `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
export const obfuscationPad = (delta: string): string => 'x'.repeat(Math.max(1, 12 - delta.length));

const SAFE = { filtered: false, severity: 'safe' };
const PROMPT_FILTER_RESULTS: Json = [
  {
    prompt_index: 0,
    content_filter_results: {
      hate: SAFE,
      jailbreak: { filtered: false, detected: false },
      self_harm: SAFE,
      sexual: SAFE,
      violence: SAFE,
    },
  },
];
const CONTENT_FILTER_RESULTS: JsonObject = {
  hate: SAFE,
  protected_material_code: { filtered: false, detected: false },
  protected_material_text: { filtered: false, detected: false },
  self_harm: SAFE,
  sexual: SAFE,
  violence: SAFE,
};

function chatUsage(g: Generation): JsonObject {
  const completion = g.deltas.length;
  return {
    prompt_tokens: g.promptTokens,
    completion_tokens: completion,
    total_tokens: g.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export function chatCompletion(g: Generation): JsonObject {
  const choice: JsonObject = {
    index: 0,
    message: { role: 'assistant', content: g.deltas.join(''), refusal: null, annotations: [] },
    logprobs: null,
    finish_reason: g.finishReason,
  };
  if (g.azure) choice.content_filter_results = CONTENT_FILTER_RESULTS;
  const body: JsonObject = {
    id: randomId('chatcmpl-'),
    object: 'chat.completion',
    created: nowSeconds(),
    model: g.model,
    choices: [choice],
    usage: chatUsage(g),
    service_tier: 'default',
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
  if (g.azure) body.prompt_filter_results = PROMPT_FILTER_RESULTS;
  return body;
}

/** All SSE frames of a chat.completion.chunk stream, ending with `data: [DONE]`. */
export function chatCompletionChunks(g: Generation): string[] {
  const id = randomId('chatcmpl-');
  const created = nowSeconds();
  const chunk = (choices: Json[], extra: JsonObject = {}): string => {
    const body: JsonObject = { id, object: 'chat.completion.chunk', created, model: g.model };
    if (!g.azure) body.service_tier = 'default';
    body.system_fingerprint = SYSTEM_FINGERPRINT;
    body.choices = choices;
    if (g.includeUsage) body.usage = null;
    return sseData({ ...body, ...extra });
  };
  const choice = (delta: JsonObject, finish: string | null, filter: JsonObject = {}): JsonObject => {
    const c: JsonObject = { index: 0, delta, logprobs: null, finish_reason: finish };
    if (g.azure) c.content_filter_results = filter;
    return c;
  };
  const pad = (d: string): JsonObject =>
    g.obfuscation && !g.azure ? { obfuscation: obfuscationPad(d) } : {};
  const frames: string[] = [];
  if (g.azure) {
    frames.push(
      sseData({
        choices: [],
        created: 0,
        id: '',
        model: '',
        object: '',
        prompt_filter_results: PROMPT_FILTER_RESULTS,
      }),
    );
  }
  frames.push(chunk([choice({ role: 'assistant', content: '', refusal: null }, null)], pad('')));
  for (const d of g.deltas)
    frames.push(chunk([choice({ content: d }, null, CONTENT_FILTER_RESULTS)], pad(d)));
  frames.push(chunk([choice({}, g.finishReason)], pad('')));
  if (g.includeUsage) frames.push(chunk([], { usage: chatUsage(g) }));
  frames.push(sseData('[DONE]'));
  return frames;
}

export const SERVER_ERROR_MESSAGE =
  'The server had an error while processing your request. Sorry about that!';

/**
 * The event OpenAI sends when a chat or completions stream fails after it began: the status was
 * already 200, so the error comes as data, and the stream ends after it without [DONE].
 */
export const STREAM_ERROR_EVENT = sseData({
  error: { message: SERVER_ERROR_MESSAGE, type: 'server_error', param: null, code: null },
});

const legacyUsage = (g: Generation): JsonObject => ({
  prompt_tokens: g.promptTokens,
  completion_tokens: g.deltas.length,
  total_tokens: g.promptTokens + g.deltas.length,
});

export function textCompletion(g: Generation): JsonObject {
  const choice: JsonObject = {
    text: g.deltas.join(''),
    index: 0,
    logprobs: null,
    finish_reason: g.finishReason,
  };
  if (g.azure) choice.content_filter_results = CONTENT_FILTER_RESULTS;
  const body: JsonObject = {
    id: randomId('cmpl-'),
    object: 'text_completion',
    created: nowSeconds(),
    model: g.model,
    choices: [choice],
    usage: legacyUsage(g),
  };
  if (g.azure) body.prompt_filter_results = PROMPT_FILTER_RESULTS;
  return body;
}

export function textCompletionChunks(g: Generation): string[] {
  const id = randomId('cmpl-');
  const created = nowSeconds();
  const chunk = (choices: Json[], usage?: JsonObject): string => {
    const body: JsonObject = { id, object: 'text_completion', created, choices, model: g.model };
    if (g.includeUsage) body.usage = usage ?? null;
    return sseData(body);
  };
  const choice = (text: string, finish: string | null): JsonObject => ({
    text,
    index: 0,
    logprobs: null,
    finish_reason: finish,
  });
  const frames = g.deltas.map((d) => chunk([choice(d, null)]));
  frames.push(chunk([choice('', g.finishReason)]));
  if (g.includeUsage) frames.push(chunk([], legacyUsage(g)));
  frames.push(sseData('[DONE]'));
  return frames;
}
