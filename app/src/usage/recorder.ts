import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { ProxyMetrics } from '../metrics/proxy-metrics.ts';
import { within } from '../shutdown-budget.ts';

/** One row of usage_logs. */
export interface UsageRow {
  id: string;
  requestId: string;
  apiKeyId: number | null;
  userId: number | null;
  upstreamKeyId: number | null;
  route: string;
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  estimated: boolean;
  statusCode: number;
  errorCode: string | null;
  latencyMs: number;
  stream: boolean;
  /** When the request ended, in epoch milliseconds. */
  createdAtMs: number;
}

export interface UsageRecorderOptions {
  db: pg.Pool;
  metrics: Pick<ProxyMetrics, 'usageBuffer' | 'usageWritten' | 'usageDropped' | 'usageWriteFailures'>;
  /** Rows kept while Postgres is unreachable; beyond it the oldest are dropped, counted and logged. */
  maxBuffer?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  onWriteError?: (err: unknown, buffered: number) => void;
  onDropped?: (count: number) => void;
  /** Rows Postgres refused as data (they are counted as dropped): their request ids and the first error. */
  onRefused?: (requestIds: string[], err: unknown) => void;
  /** A row recorded after `close` returned (it is counted as dropped): its request id. */
  onLate?: (requestId: string) => void;
}

// One statement per batch: one array literal per column in, rows out (see `columns`). The app-made
// id makes a retried batch harmless.
const INSERT = `
  INSERT INTO usage_logs (id, request_id, api_key_id, user_id, upstream_key_id, route, model, prompt_tokens,
    completion_tokens, total_tokens, estimated, status_code, error_code, latency_ms, stream, created_at)
  SELECT id, request_id, api_key_id, user_id, upstream_key_id, route, model, prompt_tokens, completion_tokens,
    total_tokens, estimated, status_code, error_code, latency_ms, stream, to_timestamp(created_ms / 1000.0)
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[], $8::int[],
    $9::int[], $10::int[], $11::bool[], $12::smallint[], $13::text[], $14::int[], $15::bool[], $16::float8[])
    AS t(id, request_id, api_key_id, user_id, upstream_key_id, route, model, prompt_tokens, completion_tokens,
      total_tokens, estimated, status_code, error_code, latency_ms, stream, created_ms)
  ON CONFLICT (id) DO NOTHING`;

type Callbacks = 'onWriteError' | 'onDropped' | 'onRefused' | 'onLate';

interface Refusal {
  row: UsageRow;
  error: unknown;
}

/**
 * Writes usage rows off the hot path: `record` only appends to a bounded in-memory buffer, and a
 * timer writes batches. A failed write keeps the rows and retries with backoff, so a Postgres
 * outage loses nothing until the buffer is full — and what is dropped then (the oldest rows not
 * being written) is counted and logged.
 * A row Postgres refuses as data would fail its batch on every retry and hold back every row
 * after it: the batch is split until that row is found, and only it is dropped (counted, logged).
 */
export class UsageRecorder {
  readonly #o: Required<Omit<UsageRecorderOptions, Callbacks>> & Pick<UsageRecorderOptions, Callbacks>;
  #buffer: UsageRow[] = [];
  /** Rows at the buffer's front whose write is in flight: drops pass them by. */
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #failures = 0;
  #retryAt = 0;
  /** Set once `close` returns: nothing will write a row recorded after it. */
  #closed = false;

  constructor(options: UsageRecorderOptions) {
    this.#o = {
      ...options,
      maxBuffer: options.maxBuffer ?? 100_000,
      batchSize: options.batchSize ?? 1_000,
      flushIntervalMs: options.flushIntervalMs ?? 1_000,
    };
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (Date.now() >= this.#retryAt) void this.flush();
    }, this.#o.flushIntervalMs);
    this.#timer.unref();
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  record(row: UsageRow): void {
    if (this.#closed) {
      // The final write is over and the process is about to exit: the row is lost, so say so.
      this.#o.metrics.usageDropped.inc();
      this.#o.onLate?.(row.requestId);
      return;
    }
    this.#buffer.push(row);
    const excess = this.#buffer.length - this.#o.maxBuffer;
    if (excess > 0) this.#dropOldest(excess);
    this.#o.metrics.usageBuffer.set(this.#buffer.length);
  }

  /**
   * Drops up to `count` of the oldest rows, passing by those being written: they are on their way,
   * and dropping them would report as lost rows that are stored. While a write is in flight the
   * buffer may so exceed its bound by up to one batch.
   */
  #dropOldest(count: number): void {
    const dropped = Math.min(count, this.#buffer.length - this.#inFlight);
    if (dropped <= 0) return;
    this.#buffer.splice(this.#inFlight, dropped);
    this.#o.metrics.usageDropped.inc(dropped);
    this.#o.onDropped?.(dropped);
  }

  /** Writes everything buffered now (one flush at a time); resolves when done or failed. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.slice(0, this.#o.batchSize);
      let refused: Refusal[];
      this.#inFlight = batch.length;
      try {
        refused = await this.#writeAround(batch);
      } catch (err) {
        this.#failures++;
        this.#retryAt = Date.now() + Math.min(500 * 2 ** this.#failures, 30_000);
        this.#o.metrics.usageWriteFailures.inc();
        this.#o.onWriteError?.(err, this.#buffer.length);
        return;
      } finally {
        this.#inFlight = 0;
      }
      // Drops passed the batch by, and rows recorded meanwhile were appended: it is still in front.
      this.#buffer.splice(0, batch.length);
      this.#failures = 0;
      this.#retryAt = 0;
      this.#o.metrics.usageWritten.inc(batch.length - refused.length);
      this.#o.metrics.usageBuffer.set(this.#buffer.length);
      if (refused.length > 0) {
        this.#o.metrics.usageDropped.inc(refused.length);
        this.#o.onRefused?.(
          refused.map((r) => r.row.requestId),
          refused[0]?.error,
        );
      }
    }
  }

  /**
   * Writes `rows`; when Postgres refuses the batch as data (SQLSTATE classes 22 and 23), writes
   * each half on its own, down to the rows it refuses, which are returned. Any other error is
   * thrown. A half written before a later failure is harmless: ids make rows idempotent.
   */
  async #writeAround(rows: UsageRow[]): Promise<Refusal[]> {
    try {
      await this.#o.db.query(INSERT, columns(rows));
      return [];
    } catch (error) {
      if (!isRowDataError(error)) throw error;
      if (rows.length === 1) return [{ row: rows[0] as UsageRow, error }];
      const half = Math.ceil(rows.length / 2);
      return [
        ...(await this.#writeAround(rows.slice(0, half))),
        ...(await this.#writeAround(rows.slice(half))),
      ];
    }
  }

  /**
   * Stops the timer and keeps flushing until the buffer is empty or `timeoutMs` has passed; returns
   * the rows still buffered (those of a write still waiting for Postgres among them), which are
   * counted as dropped: nothing writes them after this. Rows recorded from then on are dropped too
   * (counted and reported).
   */
  async close(timeoutMs = 10_000): Promise<number> {
    clearInterval(this.#timer);
    const deadline = Date.now() + timeoutMs;
    // Each wait is raced against the deadline: a Postgres that stops answering mid-write (packets
    // dropped, a lock never released) would otherwise hold the shutdown until it is killed.
    while (this.#buffer.length > 0 && Date.now() < deadline) {
      await within(deadline - Date.now(), this.flush());
      if (this.#buffer.length > 0) await within(deadline - Date.now(), sleep(200));
    }
    this.#closed = true;
    const unwritten = this.#buffer.length;
    if (unwritten > 0) this.#o.metrics.usageDropped.inc(unwritten);
    return unwritten;
  }
}

/** A data exception or integrity violation: caused by a row's values, so retrying cannot help. */
function isRowDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * The batch as one Postgres array literal per column. Built by hand because pg's generic array
 * encoding (a type check and an escaping pass per element) cost several µs per row on the proxy's
 * core, where every request pays for its row.
 */
function columns(rows: UsageRow[]): string[] {
  const list = (f: (r: UsageRow) => string) => `{${rows.map(f).join(',')}}`;
  return [
    list((r) => r.id),
    list((r) => text(r.requestId)),
    list((r) => int(r.apiKeyId)),
    list((r) => int(r.userId)),
    list((r) => int(r.upstreamKeyId)),
    list((r) => text(r.route)),
    list((r) => text(r.model)),
    list((r) => int(r.promptTokens)),
    list((r) => int(r.completionTokens)),
    list((r) => int(r.totalTokens)),
    list((r) => (r.estimated ? 't' : 'f')),
    list((r) => int(r.statusCode)),
    list((r) => text(r.errorCode)),
    list((r) => int(r.latencyMs)),
    list((r) => (r.stream ? 't' : 'f')),
    list((r) => int(r.createdAtMs)),
  ];
}

/**
 * An array element of type text: always quoted, so no value (not even `NULL`) is read as anything
 * else. Postgres text cannot hold NUL, and a client can put one in a model name (`"\u0000"` is
 * valid JSON): it becomes U+FFFD, so the row is written rather than refused and dropped.
 */
function text(value: string | null): string {
  if (value === null) return 'NULL';
  return `"${value.replace(SPECIAL, escapeChar)}"`;
}

const SPECIAL = /[\\"\0]/g;
const escapeChar = (c: string) => (c === '\0' ? '\uFFFD' : `\\${c}`);

/** An integer element (the row's numbers are whole by construction). */
function int(value: number | null): string {
  return value === null ? 'NULL' : String(value);
}
