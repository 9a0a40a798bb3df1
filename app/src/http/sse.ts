/** The blank line that ends an event in a stream without carriage returns. */
export const LF2 = Buffer.from('\n\n');
const CRLF2 = Buffer.from('\r\n\r\n');
const CR2 = Buffer.from('\r\r');

/**
 * Splits a server-sent-event byte stream into blocks of whole events, keeping the partial tail
 * until the rest arrives, so what a chunk completes can be forwarded — and inspected — at once.
 * Works on bytes: a block is usually forwarded as it came, without decoding and re-encoding.
 */
export class SseBlocks {
  #tail: Buffer | undefined;

  /** Feeds a chunk; returns the events it completed (each with its blank line), or undefined. */
  push(chunk: Buffer): Buffer | undefined {
    const data = this.#tail === undefined ? chunk : Buffer.concat([this.#tail, chunk]);
    const end = lastEventEnd(data);
    if (end < 0) {
      this.#tail = data;
      return undefined;
    }
    this.#tail = end < data.length ? data.subarray(end) : undefined;
    return data.subarray(0, end);
  }

  /** What is left when the stream ends (an event the upstream did not terminate). */
  end(): Buffer | undefined {
    const rest = this.#tail;
    this.#tail = undefined;
    return rest === undefined || rest.toString('utf8').trim() === '' ? undefined : rest;
  }
}

/** Where the last complete event in `data` ends (after its blank line), or -1. */
function lastEventEnd(data: Buffer): number {
  const lf = data.lastIndexOf(LF2);
  if (data.indexOf(13) < 0) return lf < 0 ? -1 : lf + 2;
  const crlf = data.lastIndexOf(CRLF2);
  const cr = data.lastIndexOf(CR2);
  return Math.max(lf < 0 ? -1 : lf + 2, crlf < 0 ? -1 : crlf + 4, cr < 0 ? -1 : cr + 2);
}

/** The events in a block of text, without their blank lines. */
export function splitEvents(text: string): string[] {
  return text.split(/\r\n\r\n|\n\n|\r\r/).filter((e) => e.trim() !== '');
}

/**
 * How many events a block holds that is free of carriage returns (each ends in a blank line);
 * `skip`, shown each event's bounds on the way, leaves out those it returns true for.
 */
export function countEvents(
  block: Buffer,
  skip?: (block: Buffer, start: number, end: number) => boolean,
): number {
  let n = 0;
  for (let start = 0, end = block.indexOf(LF2); end >= 0; start = end + 2, end = block.indexOf(LF2, start)) {
    if (skip === undefined || !skip(block, start, end)) n++;
  }
  return n;
}

/** The `data:` payload of an event (joined when split over several lines), or undefined. */
export function eventData(event: string): string | undefined {
  const lines = event.split(/\r\n|\n|\r/).filter((l) => l.startsWith('data:'));
  if (lines.length === 0) return undefined;
  return lines.map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
}
