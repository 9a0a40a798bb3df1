import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { Registry } from 'prom-client';
import { newId } from '../../app/src/crypto/ids.ts';
import { createProxyMetrics } from '../../app/src/metrics/proxy-metrics.ts';
import { UsageRecorder, type UsageRow } from '../../app/src/usage/recorder.ts';
import { UsageRetention } from '../../app/src/usage/retention.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

/** A row id as Postgres prints a uuid (the proxy writes it as 32 hex digits, no dashes). */
const asUuid = (id: string) => id.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

function row(overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    id: newId(),
    requestId: newId(),
    apiKeyId: 7,
    userId: 3,
    upstreamKeyId: null,
    route: '/v1/chat/completions',
    model: 'gpt-4o',
    promptTokens: 12,
    completionTokens: 34,
    totalTokens: 46,
    estimated: false,
    statusCode: 200,
    errorCode: null,
    latencyMs: 5,
    stream: true,
    createdAtMs: Date.parse('2026-11-27T06:30:00.123Z'),
    ...overrides,
  };
}

/** A recorder bounded at `maxBuffer` rows, in batches of 4, with the counts it reports dropped. */
function bounded(db: pg.Pool, maxBuffer: number) {
  const registry = new Registry();
  const dropped: number[] = [];
  const recorder = new UsageRecorder({
    db,
    metrics: createProxyMetrics(registry),
    maxBuffer,
    batchSize: 4,
    onDropped: (count) => dropped.push(count),
  });
  return { recorder, registry, dropped };
}

describe('usage recorder against Postgres', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.destroy();
  });

  /** The request ids of `rows` found in usage_logs, sorted (one entry per stored row). */
  async function storedRequestIds(rows: UsageRow[]): Promise<string[]> {
    const { rows: stored } = await stack.db.query(
      'SELECT request_id FROM usage_logs WHERE request_id = ANY($1)',
      [rows.map((r) => r.requestId)],
    );
    return stored.map((s) => s.request_id as string).sort();
  }

  it('beyond its bound, the oldest rows are dropped, counted and reported; the rest are written in batches', async () => {
    const { recorder, registry, dropped } = bounded(stack.db, 10);
    const rows = Array.from({ length: 25 }, () => row());
    for (const r of rows) recorder.record(r);
    assert.equal(recorder.buffered, 10);
    assert.equal(
      dropped.reduce((a, b) => a + b, 0),
      15,
    );

    await recorder.flush();
    assert.equal(recorder.buffered, 0);
    assert.deepEqual(
      await storedRequestIds(rows),
      rows
        .slice(15)
        .map((r) => r.requestId)
        .sort(),
    );
    const text = await registry.metrics();
    assert.match(text, /gpt_proxy_usage_rows_written_total 10\n/);
    assert.match(text, /gpt_proxy_usage_rows_dropped_total 15\n/);
    assert.match(text, /gpt_proxy_usage_buffer_rows 0\n/);
  });

  it('while a batch is being written, the rows dropped are the oldest of those waiting behind it', async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const db = {
      query: async (sql: string, values: unknown[]) => {
        if (calls++ === 0) await gate;
        return stack.db.query(sql, values);
      },
    } as unknown as pg.Pool;
    const { recorder, registry, dropped } = bounded(db, 6);
    const inFlight = Array.from({ length: 4 }, () => row());
    for (const r of inFlight) recorder.record(r);
    const flushing = recorder.flush();
    const later = Array.from({ length: 5 }, () => row());
    for (const r of later) recorder.record(r);
    assert.equal(recorder.buffered, 6, 'the bound holds');
    assert.deepEqual(dropped, [1, 1, 1]);

    release();
    await flushing;
    assert.equal(recorder.buffered, 0);
    const kept = [...inFlight, ...later.slice(3)];
    assert.deepEqual(await storedRequestIds([...inFlight, ...later]), kept.map((r) => r.requestId).sort());
    const text = await registry.metrics();
    assert.match(text, /gpt_proxy_usage_rows_written_total 6\n/);
    assert.match(text, /gpt_proxy_usage_rows_dropped_total 3\n/);
  });

  it('a row recorded after close is counted as dropped and reported, not kept where nothing writes it', async () => {
    const registry = new Registry();
    const late: string[] = [];
    const recorder = new UsageRecorder({
      db: stack.db,
      metrics: createProxyMetrics(registry),
      onLate: (requestId) => late.push(requestId),
    });
    const before = row();
    recorder.record(before);
    assert.equal(await recorder.close(1_000), 0);
    const after = row();
    recorder.record(after);
    assert.equal(recorder.buffered, 0);
    assert.deepEqual(late, [after.requestId]);
    assert.deepEqual(await storedRequestIds([before, after]), [before.requestId]);
    const text = await registry.metrics();
    assert.match(text, /gpt_proxy_usage_rows_written_total 1\n/);
    assert.match(text, /gpt_proxy_usage_rows_dropped_total 1\n/);
  });

  it('close returns within its bound, with the rows still buffered, while Postgres does not answer', async () => {
    // A real Postgres that stops answering mid-INSERT: the table is locked by another session,
    // so the write waits for as long as the lock is held.
    const locker = await stack.db.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE usage_logs IN ACCESS EXCLUSIVE MODE');
    try {
      const recorder = new UsageRecorder({ db: stack.db, metrics: createProxyMetrics(new Registry()) });
      const rows = Array.from({ length: 3 }, () => row());
      for (const r of rows) recorder.record(r);
      const started = performance.now();
      const closing = recorder.close(500);
      const result = await Promise.race([closing, sleep(5_000).then(() => 'still waiting')]);
      const ms = performance.now() - started;
      assert.equal(result, 3, 'the rows not written are counted');
      assert.ok(ms < 1_000, `returned after ${Math.round(ms)} ms`);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
  });

  it('the rows close could not write are counted as dropped: nothing writes them after it', async () => {
    const db = {
      query: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      },
    } as unknown as pg.Pool;
    const registry = new Registry();
    const recorder = new UsageRecorder({ db, metrics: createProxyMetrics(registry) });
    for (let i = 0; i < 3; i++) recorder.record(row());
    assert.equal(await recorder.close(100), 3);
    const text = await registry.metrics();
    assert.match(text, /gpt_proxy_usage_rows_dropped_total 3\n/);
    assert.match(text, /gpt_proxy_usage_rows_written_total 0\n/);
  });

  it('a batch retried after its reply was lost is stored once: each row keeps its id', async () => {
    // The insert commits, then the connection fails before the reply is read: the recorder must
    // retry (it cannot know), and the retry must not store the rows twice.
    let lost = 0;
    const db = {
      query: async (sql: string, values: unknown[]) => {
        const result = await stack.db.query(sql, values);
        if (lost++ === 0) throw new Error('Connection terminated unexpectedly');
        return result;
      },
    } as unknown as pg.Pool;
    const registry = new Registry();
    const recorder = new UsageRecorder({ db, metrics: createProxyMetrics(registry) });
    const rows = Array.from({ length: 3 }, () => row());
    for (const r of rows) recorder.record(r);

    await recorder.flush();
    assert.equal(recorder.buffered, 3, 'kept for a retry');
    await recorder.flush();
    assert.equal(recorder.buffered, 0);
    assert.deepEqual(await storedRequestIds(rows), rows.map((r) => r.requestId).sort(), 'each row once');
    const text = await registry.metrics();
    assert.match(text, /gpt_proxy_usage_write_failures_total 1\n/);
    assert.match(text, /gpt_proxy_usage_rows_written_total 3\n/);
  });

  it('a row Postgres refuses is dropped, counted and reported; the rest of its batch is written', async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry);
    const refusals: Array<{ ids: string[]; code: unknown }> = [];
    const recorder = new UsageRecorder({
      db: stack.db,
      metrics,
      onRefused: (ids, err) => refusals.push({ ids, code: (err as { code?: unknown }).code }),
    });
    // latency_ms has a CHECK (>= 0): a stand-in for any value Postgres rejects.
    const bad = row({ latencyMs: -1 });
    const rows = [row(), row(), bad, row(), row()];
    for (const r of rows) recorder.record(r);
    await recorder.flush();

    assert.equal(recorder.buffered, 0, 'nothing is held back behind the refused row');
    assert.deepEqual(refusals, [{ ids: [bad.requestId], code: '23514' }]);
    const { rows: stored } = await stack.db.query('SELECT id FROM usage_logs WHERE id = ANY($1)', [
      rows.map((r) => r.id),
    ]);
    assert.deepEqual(
      stored.map((s) => s.id).sort(),
      rows
        .filter((r) => r !== bad)
        .map((r) => asUuid(r.id))
        .sort(),
    );
    const text = await registry.metrics();
    assert.match(text, /gpt_proxy_usage_rows_written_total 4\n/);
    assert.match(text, /gpt_proxy_usage_rows_dropped_total 1\n/);
    assert.match(text, /gpt_proxy_usage_write_failures_total 0\n/);
  });

  it('writes every field exactly, whatever characters a client put in the model name', async () => {
    const recorder = new UsageRecorder({ db: stack.db, metrics: createProxyMetrics(new Registry()) });
    const awkward = [
      'a"b',
      'back\\slash',
      '{braces},comma',
      'NULL',
      '',
      ' spaced ',
      'ünï😀',
      'nul\u0000inside',
    ];
    const rows = [
      row(),
      row({
        apiKeyId: null,
        userId: null,
        model: null,
        errorCode: 'invalid_api_key',
        statusCode: 401,
        stream: false,
        estimated: true,
      }),
      ...awkward.map((model) => row({ model, upstreamKeyId: 9, errorCode: 'upstream_429', statusCode: 429 })),
    ];
    for (const r of rows) recorder.record(r);
    await recorder.flush();
    assert.equal(recorder.buffered, 0, 'the batch was written');

    const { rows: stored } = await stack.db.query(
      `SELECT id, request_id, api_key_id, user_id, upstream_key_id, route, model, prompt_tokens, completion_tokens,
              total_tokens, estimated, status_code, error_code, latency_ms, stream, created_at
       FROM usage_logs WHERE id = ANY($1)`,
      [rows.map((r) => r.id)],
    );
    const byId = new Map(stored.map((s) => [s.id, s]));
    for (const r of rows) {
      const s = byId.get(asUuid(r.id));
      assert.ok(s, `row ${r.model} stored`);
      assert.deepEqual(
        { ...s, created_at: s.created_at.getTime() },
        {
          id: asUuid(r.id),
          request_id: r.requestId,
          api_key_id: r.apiKeyId,
          user_id: r.userId,
          upstream_key_id: r.upstreamKeyId,
          route: r.route,
          // Postgres text cannot hold NUL: it is stored as U+FFFD.
          model: r.model?.replace('\u0000', '\uFFFD') ?? null,
          prompt_tokens: r.promptTokens,
          completion_tokens: r.completionTokens,
          total_tokens: r.totalTokens,
          estimated: r.estimated,
          status_code: r.statusCode,
          error_code: r.errorCode,
          latency_ms: r.latencyMs,
          stream: r.stream,
          created_at: r.createdAtMs,
        },
      );
    }
  });

  it('retention running on two replicas at once deletes every old row, and keeps the recent ones', async () => {
    // 1,250 batches of 2: a replica stopping after a fixed number of rounds (1,000), or after
    // colliding with the other on the same rows, leaves old rows behind.
    const insert = (requestId: string, count: number, age: string) =>
      stack.db.query(
        `INSERT INTO usage_logs (id, request_id, route, status_code, latency_ms, created_at)
         SELECT gen_random_uuid(), $1, '/v1/x', 200, 1, now() - $3::interval FROM generate_series(1, $2)`,
        [requestId, count, age],
      );
    await insert('retention-old', 2_500, '10 days');
    await insert('retention-recent', 10, '1 day');
    const errors: unknown[] = [];
    const replicas = [1, 2].map(
      () => new UsageRetention({ db: stack.db, days: 7, batchSize: 2, onError: (e) => errors.push(e) }),
    );
    await Promise.all(replicas.map((r) => r.run()));
    assert.deepEqual(errors, []);
    const count = async (requestId: string) =>
      (await stack.db.query('SELECT count(*)::int AS n FROM usage_logs WHERE request_id = $1', [requestId]))
        .rows[0]?.n;
    assert.equal(await count('retention-old'), 0, 'no old row is left');
    assert.equal(await count('retention-recent'), 10, 'the recent rows are kept');
  });
});
