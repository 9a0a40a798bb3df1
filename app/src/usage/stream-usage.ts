import { countEvents, eventData, LF2, splitEvents } from '../http/sse.ts';
import type { Operation } from '../upstream/types.ts';
import { type TokenCounts, toCounts } from './tokens.ts';

const DONE = Buffer.from('[DONE]');
const EMPTY = Buffer.alloc(0);
const toBytes = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b) : b);
const USAGE = Buffer.from('"usage":');
const NULL = Buffer.from('null');
const RESPONSE_ENDS = ['completed', 'incomplete', 'failed'].map((e) => Buffer.from(`event: response.${e}`));

/**
 * Watches a relayed event stream for the upstream's usage report. For chat and completions the
 * proxy asks for `stream_options.include_usage`; when the client did not ask for it, the extra
 * usage-only chunk is removed so the client sees exactly the stream it asked for. Responses
 * streams carry usage in their final `response.completed` event. Also counts content events, the
 * basis of an estimate when no usage arrives (about one token per chunk).
 */
export class StreamUsage {
  readonly #operation: Operation;
  readonly #clientAskedForUsage: boolean;
  usage: TokenCounts | undefined;
  contentEvents = 0;

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
      this.contentEvents += countEvents(block) - (block.includes(DONE) ? 1 : 0);
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

  /** Where the first event that may hold a usage report mentions it, or -1. */
  #reportAt(block: Buffer): number {
    if (this.#operation === 'responses') {
      const found = RESPONSE_ENDS.map((e) => block.indexOf(e)).filter((i) => i >= 0);
      return found.length === 0 ? -1 : Math.min(...found);
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
      if (/^event: response\.(completed|incomplete|failed)\b/m.test(event)) this.#readUsage(event, true);
      else this.contentEvents++;
      return event;
    }
    // Chunks carry `"usage":null` until the usage chunk, so only a usage object is worth parsing.
    if (!/"usage":\s*\{/.test(event)) {
      if (!event.includes('[DONE]')) this.contentEvents++;
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
