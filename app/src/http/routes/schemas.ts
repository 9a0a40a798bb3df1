import { z } from 'zod';
import { ApiError } from '../../errors.ts';
import type { Operation } from '../../upstream/types.ts';

// The fields the proxy itself relies on, per operation. Everything else in the body passes
// through untouched for the upstream to judge; these are checked here so a malformed request is
// a clear 400 before it costs an upstream call.
const model = z
  .string({ error: "'model' is required and must be a string" })
  .min(1, "'model' must not be empty");
// OpenAI documents `stream` as boolean or null; null is false.
const stream = z.boolean({ error: "'stream' must be true, false or null" }).nullable().optional();
const textOrList = (field: string) =>
  z.union([z.string(), z.array(z.unknown()).min(1)], {
    error: `'${field}' is required: a string or a non-empty array`,
  });

const base = { model, stream };
const SCHEMAS = {
  'chat/completions': z.object({
    ...base,
    messages: z
      .array(z.unknown(), { error: "'messages' is required and must be an array" })
      .min(1, "'messages' must not be empty"),
  }),
  completions: z.object({ ...base, prompt: textOrList('prompt') }),
  embeddings: z.object({ ...base, input: textOrList('input') }),
  responses: z.object(base),
} as const;

export type ProxiedOperation = keyof typeof SCHEMAS;

// On the Azure surface the deployment in the path names the model: the body's is not checked.
const modelFree = <S extends (typeof SCHEMAS)[ProxiedOperation]>(s: S) =>
  s.extend({ model: z.unknown().optional() });
const AZURE_SCHEMAS = {
  'chat/completions': modelFree(SCHEMAS['chat/completions']),
  completions: modelFree(SCHEMAS.completions),
  embeddings: modelFree(SCHEMAS.embeddings),
  responses: modelFree(SCHEMAS.responses),
};

export interface ValidatedRequest {
  model: string | undefined;
  stream: boolean;
}

/**
 * Checks a body for `operation`. On the Azure surface the deployment in the path names the
 * model, so whatever `model` the body has (Azure SDKs often send none or an empty one) is ignored.
 */
export function validateBody(
  operation: Operation,
  json: Record<string, unknown>,
  modelInPath: boolean,
): ValidatedRequest {
  const schema = (modelInPath ? AZURE_SCHEMAS : SCHEMAS)[operation as ProxiedOperation];
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const param = issue?.path.map(String).join('.') || null;
    throw new ApiError('invalid_request', issue?.message ?? 'Invalid request body.', param ? { param } : {});
  }
  const found = result.data.model;
  return {
    model: typeof found === 'string' && !modelInPath ? found : undefined,
    stream: result.data.stream === true,
  };
}
