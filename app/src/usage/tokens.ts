import type { Operation } from '../upstream/types.ts';

export interface TokenCounts {
  prompt: number;
  completion: number;
  total: number;
}

/**
 * A rough prompt size before the upstream has counted it: a quarter of the body's bytes. It
 * over-counts JSON punctuation, which is the safe side for a reservation; the real count
 * replaces it when the upstream reports usage.
 */
export function estimatePromptTokens(raw: Buffer): number {
  return Math.ceil(raw.byteLength / 4);
}

/** The completion budget a request reserves: its own max, else the configured default. */
export function completionBudget(
  operation: Operation,
  json: Record<string, unknown>,
  fallback: number,
): number {
  if (operation === 'embeddings') return 0;
  for (const field of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const v = json[field];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.ceil(v);
  }
  return fallback;
}

const USAGE_KEY = Buffer.from('"usage"');

/**
 * Reads `usage` from an upstream JSON body (chat/completions/embeddings use prompt/completion
 * tokens, Responses input/output tokens). Only the usage object is parsed — it is near the end
 * of the body — so a large embeddings answer is not parsed whole on the hot path.
 */
export function usageFromBody(body: Buffer): TokenCounts | undefined {
  const at = body.lastIndexOf(USAGE_KEY);
  if (at < 0) return undefined;
  const text = body.toString('utf8', at);
  const open = text.indexOf('{');
  if (open < 0) return undefined;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return toCounts(safeParse(text.slice(open, i + 1)));
  }
  return undefined;
}

/** The usage columns are Postgres integers; a count an upstream reports beyond that is capped. */
const MAX_COUNT = 2_147_483_647;

/** Normalises either usage shape; undefined when it holds no numbers. */
export function toCounts(usage: unknown): TokenCounts | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  const num = (v: unknown) =>
    typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(Math.round(v), MAX_COUNT) : undefined;
  const prompt = num(u.prompt_tokens) ?? num(u.input_tokens);
  const completion = num(u.completion_tokens) ?? num(u.output_tokens) ?? 0;
  if (prompt === undefined) return undefined;
  return { prompt, completion, total: num(u.total_tokens) ?? Math.min(prompt + completion, MAX_COUNT) };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
