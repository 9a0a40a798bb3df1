// What one usage row costs Postgres: inserts 100,000 rows in batches of `--rows` (1,000) through the
// UsageRecorder (the proxy's own statement) into a fresh usage_logs table, and reads the CPU the
// server's processes used. Row ids from `newId()` (time-ordered, version 7) and random version-4
// ids, in turn, four rounds, so the table grows under both.
//   node bench/pg-rows.ts [--rows 1000]
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { newId } from '../app/src/crypto/ids.ts';
import { UsageRecorder, type UsageRow } from '../app/src/usage/recorder.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { childPids, cpuTicks } from './procs.ts';

const { values: o } = parseArgs({ options: { rows: { type: 'string', default: '1000' } } });
const ROWS = Number(o.rows);
const BATCHES = Math.round(100_000 / ROWS);

/** A random version-4 UUID in the same flat form (what `newId()` made before). */
const randomId = () => randomUUID().replaceAll('-', '');

const server = await startPostgres();
const db = new pg.Pool({ connectionString: server.url(), max: 1 });
// pool.end() resolves before its socket closes; the server stopping then must not crash the script.
db.on('error', () => {});
try {
  const ddl = readFileSync(new URL('../app/src/db/migrations/0001_init.sql', import.meta.url), 'utf8');
  const start = ddl.indexOf('CREATE TABLE usage_logs');
  await db.query(ddl.slice(start, ddl.indexOf(';', ddl.indexOf('usage_logs_request')) + 1));
  const quiet = { inc() {}, set() {} } as never;
  const recorder = new UsageRecorder({
    db,
    metrics: { usageBuffer: quiet, usageWritten: quiet, usageDropped: quiet, usageWriteFailures: quiet },
    maxBuffer: BATCHES * ROWS,
  });
  const serverTicks = () => {
    const pid = server.pid ?? 0;
    return [pid, ...childPids(pid)].reduce((sum, p) => sum + cpuTicks(p), 0);
  };
  for (let round = 1; round <= 4; round++)
    for (const [name, id] of [
      ['time-ordered (newId)', newId],
      ['random v4', randomId],
    ] as const) {
      const before = serverTicks();
      for (let b = 0; b < BATCHES; b++) {
        for (let i = 0; i < ROWS; i++) recorder.record(row(id(), id()));
        await recorder.flush();
      }
      const us = ((serverTicks() - before) * 10_000) / (BATCHES * ROWS);
      process.stdout.write(`round ${round}, ${name}: Postgres ${us.toFixed(1)} µs CPU per row\n`);
    }
} finally {
  await db.end();
  await server.destroy();
}

function row(id: string, requestId: string): UsageRow {
  return {
    id,
    requestId,
    apiKeyId: 1,
    userId: 1,
    upstreamKeyId: 1,
    route: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    promptTokens: 12,
    completionTokens: 9,
    totalTokens: 21,
    estimated: false,
    statusCode: 200,
    errorCode: null,
    latencyMs: 3,
    stream: false,
    createdAtMs: Date.now(),
  };
}
