import { countEvents, eventData, LF2, splitEvents } from '../http/sse.ts';
import type { Operation } from '../upstream/types.ts';
import { type TokenCounts, toCounts } from './tokens.ts';

const DONE = Buffer.from('[DONE]');
const EMPTY = Buffer.alloc(0);
const toBytes = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b) : b);
const USAGE = Buffer.from('"usage":');
const NULL = Buffer.from('null');
const RESPONSE_ENDS = ['completed', 'incomplete', 'failed'].map((e) => Buffer.from(`event: response.${e}`));
/** How the Responses `error` event begins (in a block free of carriage returns). */
const EVENT_ERROR = Buffer.from('event: error\n');
const DATA = Buffer.from('data:');
/** A chat or completions error event's first key. */
const ERROR = Buffer.from('"error"');
/** An error event's data: an object whose first key is `error` (Azure nests `"error"` in content filter results). */
const ERROR_FIRST = /^\s*\{\s*"error"\s*:/;
const SPACE = 0x20;
const BRACE = 0x7b;

/** Whether `block` holds `bytes` at `at`, compared in place: no copy, no call out. */
function holdsAt(block: Buffer, at: number, bytes: Buffer): boolean {
  for (let k = 0; k < bytes.length; k++) if (block[at + k] !== bytes[k]) return false;
  return true;
}

/**
 * Whether the event at `at` begins `data: {"error"` (spaces allowed). A content chunk is told
 * apart a few bytes in (`{"id"…`, `{"choices"…`).
 */
function errorFirst(block: Buffer, at: number): boolean {
  if (!holdsAt(block, at, DATA)) return false;
  let i = at + DATA.length;
  while (block[i] === SPACE) i++;
  if (block[i++] !== BRACE) return false;
  while (block[i] === SPACE) i++;
  return holdsAt(block, i, ERROR);
}

/**
 * Watches a relayed event stream for the upstream's usage report. For chat and completions the
 * proxy asks for `stream_options.include_usage`; when the client did not ask for it, the extra
 * usage-only chunk is removed so the client sees exactly the stream it asked for. Responses
 * streams carry usage in their final `response.completed` event. Also counts content events, the
 * basis of an estimate when no usage arrives (about one token per chunk), and notices an error the
 * upstream sent inside the 200 stream (see `upstreamFailed`).
 */
export class StreamUsage {
  readonly #operation: Operation;
  readonly #clientAskedForUsage: boolean;
  usage: TokenCounts | undefined;
  contentEvents = 0;
  /**
   * The upstream reported a failure inside the stream, which the client gets as it came: chat and
   * completions send `data: {"error":{…}}` and end without [DONE]; Responses send an `error` event
   * or `response.failed`. The request failed though the status was 200.
   */
  upstreamFailed = false;

  constructor(operation: Operation, clientAskedForUsage: boolean) {
    this.#operation = operation;
    this.#clientAskedForUsage = clientAskedForUsage;
  }

  /**
   * The relay's filter, for a block of whole events: returns what to forward. Events that cannot
   * hold a usage report (their `"usage":` is `null`: all chunks but the last) are forwarded byte
   * for byte and only counted; the event that may hold one is parsed and kept or dropped.
   */
  readonly filterBlock = (block: Buffer): Buffer | string => {
    if (block.indexOf(13) >= 0) return this.#eventByEvent(block);
    const at = this.#reportAt(block);
    if (at < 0) {
      this.contentEvents += countEvents(block, this.#reportsError) - (block.includes(DONE) ? 1 : 0);
      return block;
    }
    const previous = block.lastIndexOf(LF2, at);
    const start = previous < 0 ? 0 : previous + 2;
    const end = block.indexOf(LF2, at) + 2;
    const before = this.filterBlock(block.subarray(0, start));
    const kept = this.filter(block.subarray(start, end - 2).toString('utf8'));
    const after = this.filterBlock(block.subarray(end));
    return Buffer.concat([
      toBytes(before),
      kept === null ? EMPTY : Buffer.from(`${kept}\n\n`),
      toBytes(after),
    ]);
  };

  /**
   * For the count's walk over a block's events (no carriage returns): whether the event from
   * `start` to `end` is the upstream's error report, noted and left out of the content count. Only
   * each event's first bytes are looked at; a chat event that begins like one is parsed.
   */
  readonly #reportsError = (block: Buffer, start: number, end: number): boolean => {
    const failed =
      this.#operation === 'responses'
        ? holdsAt(block, start, EVENT_ERROR)
        : errorFirst(block, start) && this.#isErrorEvent(block.subarray(start, end).toString('utf8'));
    if (failed) this.upstreamFailed = true;
    return failed;
  };

  /** A chat or completions event reporting an error: `data: {"error":{…}}` (as OpenAI's SDK reads it). */
  #isErrorEvent(event: string): boolean {
    const data = eventData(event);
    if (data === undefined || !ERROR_FIRST.test(data)) return false;
    try {
      return Boolean((JSON.parse(data) as { error?: unknown }).error);
    } catch {
      return false;
    }
  }

  /** Where the first event that may hold a usage report mentions it, or -1. */
  #reportAt(block: Buffer): number {
    if (this.#operation === 'responses') {
      let first = -1;
      for (const mark of RESPONSE_ENDS) {
        const at = block.indexOf(mark);
        if (at >= 0 && (first < 0 || at < first)) first = at;
      }
      return first;
    }
    for (let at = block.indexOf(USAGE); at >= 0; at = block.indexOf(USAGE, at + USAGE.length)) {
      if (!block.subarray(at + USAGE.length, at + USAGE.length + 4).equals(NULL)) return at;
    }
    return -1;
  }

  /** A block with carriage returns (rare): split as text, each event filtered. */
  #eventByEvent(block: Buffer): string {
    let out = '';
    for (const event of splitEvents(block.toString('utf8'))) {
      const kept = this.filter(event);
      if (kept !== null) out += `${kept}\n\n`;
    }
    return out;
  }

  /** One event: returns the event to forward, or null to drop it. */
  readonly filter = (event: string): string | null => {
    if (this.#operation === 'responses') {
      const end = /^event: (?:response\.(completed|incomplete|failed)|(error))\b/m.exec(event);
      if (end?.[1] !== undefined) this.#readUsage(event, true);
      else if (end === null) this.contentEvents++;
      if (end?.[1] === 'failed' || end?.[2] !== undefined) this.upstreamFailed = true;
      return event;
    }
    // Chunks carry `"usage":null` until the usage chunk, so only a usage object is worth parsing.
    if (!/"usage":\s*\{/.test(event)) {
      if (event.includes('"error"') && this.#isErrorEvent(event)) this.upstreamFailed = true;
      else if (!event.includes('[DONE]')) this.contentEvents++;
      return event;
    }
    const chunk = this.#readUsage(event, false);
    const usageOnly = Array.isArray(chunk?.choices) && chunk.choices.length === 0;
    return usageOnly && !this.#clientAskedForUsage ? null : event;
  };

  #readUsage(event: string, nested: boolean): { choices?: unknown[] } | undefined {
    const data = eventData(event);
    if (data === undefined) return undefined;
    try {
      const parsed = JSON.parse(data) as {
        usage?: unknown;
        choices?: unknown[];
        response?: { usage?: unknown };
      };
      this.usage = toCounts(nested ? parsed.response?.usage : parsed.usage) ?? this.usage;
      return parsed;
    } catch {
      return undefined;
    }
  }
}

const ASK_USAGE = Buffer.from(',"stream_options":{"include_usage":true}');

/**
 * The body to send upstream for a stream: asks for usage unless the client already did. `raw`,
 * when given, is the client's body exactly as `json` was parsed from it: without stream_options
 * the field is added before its closing brace rather than serialising the whole body again.
 */
export function withUsageRequested(
  json: Record<string, unknown>,
  raw?: Buffer,
): { body: Buffer } | undefined {
  const options = json.stream_options;
  const current = options && typeof options === 'object' ? (options as Record<string, unknown>) : {};
  if (current.include_usage === true) return undefined;
  const close = raw?.lastIndexOf(0x7d) ?? -1;
  if (raw !== undefined && options === undefined && close > 0 && Object.keys(json).length > 0) {
    return { body: Buffer.concat([raw.subarray(0, close), ASK_USAGE, raw.subarray(close)]) };
  }
  return {
    body: Buffer.from(JSON.stringify({ ...json, stream_options: { ...current, include_usage: true } })),
  };
}
