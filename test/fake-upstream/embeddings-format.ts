// Embeddings (/v1/embeddings) and models (/v1/models) bodies in the OpenAI wire format, and Azure's
// own model list (/openai/models on its dated surface).
import { countTokens, type JsonObject, textOf } from './openai-format.ts';

export const DEFAULT_MODELS: readonly string[] = [
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-4o',
  'gpt-4o-2024-08-06',
  'gpt-4o-mini',
  'gpt-4o-mini-2024-07-18',
  'gpt-4-turbo',
  'gpt-3.5-turbo',
  'gpt-3.5-turbo-instruct',
  'o1',
  'o3',
  'o3-mini',
  'o4-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'text-embedding-ada-002',
];

const MODEL_CREATED = 1_700_000_000;
/** When Azure's listed base models stop serving inference (its `deprecation.inference`). */
const AZURE_MODEL_RETIRES = 1_900_000_000;
export const modelObject = (id: string): JsonObject => ({
  id,
  object: 'model',
  created: MODEL_CREATED,
  owned_by: 'system',
});
export const modelsList = (ids: readonly string[]): JsonObject => ({
  object: 'list',
  data: ids.map(modelObject),
});

/**
 * Azure's "Models - List" (`GET /openai/models?api-version=…`): the models the resource can use,
 * each with its capabilities and lifecycle, `created_at` rather than `created`, and no `owned_by`.
 */
export const azureModelList = (ids: readonly string[]): JsonObject => ({
  data: ids.map((id) => {
    const embeddings = id.includes('embedding');
    const completion = !embeddings && id.includes('instruct');
    return {
      status: 'succeeded',
      capabilities: {
        fine_tune: false,
        inference: true,
        completion,
        chat_completion: !embeddings && !completion,
        embeddings,
      },
      lifecycle_status: 'generally-available',
      deprecation: { inference: AZURE_MODEL_RETIRES },
      id,
      created_at: MODEL_CREATED,
      object: 'model',
    };
  }),
  object: 'list',
});

export function defaultDimensions(model: string): number {
  return model.includes('3-large') ? 3072 : 1536;
}

/**
 * Deterministic unit-length vector for `text`: xorshift32 seeded by FNV-1a of the text, every value
 * rounded to float32 so that the float and base64 encodings decode to identical numbers.
 */
export function embedVector(text: string, dimensions: number): number[] {
  let seed = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 0x01000193);
  seed = seed >>> 0 || 1;
  const raw: number[] = [];
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    const v = seed / 0x80000000 - 1;
    raw.push(v);
    norm += v * v;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return raw.map((v) => Math.fround(v * scale));
}

/** base64 of the float32 little-endian bytes, as OpenAI returns with `encoding_format: 'base64'`. */
export function float32Base64(vector: readonly number[]): string {
  const buf = Buffer.allocUnsafe(vector.length * 4);
  vector.forEach((v, i) => {
    buf.writeFloatLE(v, i * 4);
  });
  return buf.toString('base64');
}

export interface EmbeddingsRequest {
  model: string;
  input: unknown;
  dimensions?: number;
  base64: boolean;
}

/** Input items: a string, string[], number[] (one token array) or number[][]. */
function inputItems(input: unknown): unknown[] {
  if (!Array.isArray(input)) return [input];
  return input.length > 0 && input.every((x) => typeof x === 'number') ? [input] : input;
}

export function embeddingsList(req: EmbeddingsRequest): JsonObject {
  const dims = req.dimensions ?? defaultDimensions(req.model);
  let promptTokens = 0;
  const data = inputItems(req.input).map((item, index) => {
    const text = Array.isArray(item) ? item.join(',') : textOf(item);
    promptTokens += Array.isArray(item) ? item.length : countTokens(text);
    const vector = embedVector(text, dims);
    return {
      object: 'embedding',
      index,
      embedding: req.base64 ? float32Base64(vector) : vector,
    };
  });
  return {
    object: 'list',
    data,
    model: req.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
