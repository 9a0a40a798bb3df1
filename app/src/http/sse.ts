/**
 * Splits a server-sent-event byte stream into whole events (separated by a blank line), keeping
 * the partial tail until the rest arrives, so each event can be forwarded — and inspected — the
 * moment it is complete.
 */
export class SseSplitter {
  readonly #decoder = new TextDecoder();
  #tail = '';

  /** Feeds a chunk; returns the events it completed, without their trailing blank line. */
  push(chunk: Uint8Array): string[] {
    this.#tail += this.#decoder.decode(chunk, { stream: true });
    const parts = this.#tail.split(/\r\n\r\n|\n\n|\r\r/);
    this.#tail = parts.pop() ?? '';
    return parts.filter((p) => p !== '');
  }

  /** What is left when the stream ends (an event the upstream did not terminate). */
  end(): string | undefined {
    const rest = this.#tail + this.#decoder.decode();
    this.#tail = '';
    return rest.trim() === '' ? undefined : rest;
  }
}

/** The `data:` payload of an event (joined when split over several lines), or undefined. */
export function eventData(event: string): string | undefined {
  const lines = event.split(/\r\n|\n|\r/).filter((l) => l.startsWith('data:'));
  if (lines.length === 0) return undefined;
  return lines.map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
}
