import { writeSync } from 'node:fs';

const RETRY_MS = 10;
const NAP = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` (only at exit, when a full pipe must be waited out). */
const sleepSync = (ms: number) => Atomics.wait(NAP, 0, 0, ms);

/**
 * A pino destination that writes log lines to a file descriptor in blocks: lines wait in an array
 * until `blockChars` have gathered (or `flush()` is called) and then go out in one `write(2)`.
 * The write is synchronous — one system call per ~45 access lines, and nothing ever sits in
 * libuv's thread pool where a process exit could lose it. On a non-blocking pipe that is full
 * (EAGAIN) or takes part of a block, the rest stays first in line and is retried on a timer; lines
 * keep their order and nothing queued is lost while the process lives. `flushSync()` writes all
 * that is queued, for the process's exit.
 *
 * Why not `pino.destination({ minLength })` (sonic-boom): it appends each line to one growing
 * string and measures that string's UTF-8 length on every write, so the cost of a line grows with
 * the block — about 3 µs a line for 16 KB blocks against 0.7 µs here (bench/RESULTS.md).
 */
export class BlockWriter {
  readonly #fd: number;
  readonly #blockChars: number;
  #lines: string[] = [];
  #queued = 0;
  /** What a full pipe did not take yet; written before any newer line. */
  #pending: Buffer | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(fd: number, blockChars = 16_000) {
    this.#fd = fd;
    this.#blockChars = blockChars;
  }

  write(line: string): boolean {
    this.#lines.push(line);
    this.#queued += line.length;
    if (this.#queued >= this.#blockChars) this.flush();
    return true;
  }

  /** Writes whatever is queued now, unless a full pipe is being waited for (the retry takes it). */
  flush(): void {
    if (this.#retry !== undefined) return;
    while (!this.#empty() && this.#writeSome()) {}
  }

  /** Resolves once every line written so far (and meanwhile) has gone out. */
  async drained(): Promise<void> {
    for (this.flush(); !this.#empty(); this.flush()) await new Promise((r) => setTimeout(r, RETRY_MS));
  }

  /** Writes all that is queued, waiting out a full pipe: for the process's exit. */
  flushSync(): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    while (!this.#empty()) {
      if (!this.#writeSome()) sleepSync(RETRY_MS);
    }
  }

  #empty(): boolean {
    return this.#pending === undefined && this.#lines.length === 0;
  }

  /** One write of the pending rest or else the queued lines; false when the pipe was full. */
  #writeSome(): boolean {
    if (this.#pending === undefined) {
      this.#pending = Buffer.from(this.#lines.join(''));
      this.#lines = [];
      this.#queued = 0;
    }
    let written = 0;
    try {
      written = writeSync(this.#fd, this.#pending);
    } catch (err) {
      // Any error but a full pipe (the reader went away: EPIPE, EBADF) has nowhere to be
      // reported: the block is dropped and the writer goes on, as a log must not stop the server.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') written = this.#pending.length;
    }
    this.#pending = written < this.#pending.length ? this.#pending.subarray(written) : undefined;
    if (this.#pending === undefined) return true;
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined;
      this.flush();
    }, RETRY_MS);
    return false;
  }
}
