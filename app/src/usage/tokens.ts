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
 *
 * The last `"usage"` is not always the one: a Responses answer echoes the client's `user` and
 * `metadata` after it, and a client may well write `"usage"` there. Such echoes are strings, so
 * only a `"usage"` key whose value is an object with counts in it is taken, searching back from
 * the end. (Inside a string every quote is escaped, so `"usage"` never matches text.)
 */
export function usageFromBody(body: Buffer): TokenCounts | undefined {
  let at = body.lastIndexOf(USAGE_KEY);
  while (at >= 0) {
    const open = objectValueAt(body, at + USAGE_KEY.length);
    const counts = open < 0 ? undefined : toCounts(safeParse(objectText(body, open)));
    if (counts) return counts;
    // (A negative offset would count from the end again.)
    at = at === 0 ? -1 : body.lastIndexOf(USAGE_KEY, at - 1);
  }
  return undefined;
}

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Where the object value of a key starts (`: {` after the key's closing quote), or -1. */
function objectValueAt(body: Buffer, i: number): number {
  while (isSpace(body[i])) i++;
  if (body[i] !== 0x3a /* : */) return -1;
  i++;
  while (isSpace(body[i])) i++;
  return body[i] === 0x7b /* { */ ? i : -1;
}

/** The object starting at `open`, up to its closing brace (usage objects hold no strings). */
function objectText(body: Buffer, open: number): string {
  let depth = 0;
  for (let i = open; i < body.length; i++) {
    const c = body[i];
    if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return body.toString('utf8', open, i + 1);
  }
  return '';
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
