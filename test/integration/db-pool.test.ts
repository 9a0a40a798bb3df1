// The app's pg pool against a real Postgres whose connections are dropped under it, or that stops
// answering: the caller gets an error (within a bound), never the process.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createPool, withTransaction } from '../../app/src/db/pool.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';

describe('database pool (real Postgres)', { timeout: 60_000 }, () => {
  let server: PostgresServer;
  let url: string;
  let admin: pg.Client;
  const pools: pg.Pool[] = [];

  before(async () => {
    server = await startPostgres();
    ({ url } = await server.createDatabase());
    admin = await server.connect();
  });
  after(async () => {
    await Promise.allSettled(pools.map((p) => p.end()));
    await admin?.end();
    await server?.destroy();
  });

  function pool(queryTimeoutMs?: number): pg.Pool {
    const config = { connectionString: url, poolSize: 2 } as Parameters<typeof createPool>[0];
    const p = createPool(config, { queryTimeoutMs });
    pools.push(p);
    return p;
  }

  /** How `promise` ended and after how long; 'pending' if it had not after `limitMs`. */
  async function settle(promise: Promise<unknown>, limitMs = 10_000) {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      promise.then(
        () => 'resolved',
        (err: Error) => `rejected: ${err.message}`,
      ),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('pending'), limitMs);
      }),
    ]);
    clearTimeout(timer);
    return { outcome, ms: performance.now() - started };
  }

  /** Terminates the client's backend from another session, and waits until the client has seen it. */
  async function dropConnection(client: pg.PoolClient): Promise<void> {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    // Not events.once: it would listen for 'error' too, which is what is under test.
    const ended = new Promise((resolve) => client.once('end', resolve));
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
    await ended;
  }

  it('a connection dropped inside withTransaction rejects it, and the pool carries on', async () => {
    const db = pool();
    await assert.rejects(
      withTransaction(db, async (client) => {
        await dropConnection(client);
        await client.query('SELECT 1');
      }),
      /terminat|not queryable/i,
    );
    // Had pg's 'error' event found no listener, the process (and node:test with it) would be gone.
    assert.equal(db.totalCount, 0, 'the dead client was destroyed, not put back');
    const { rows } = await db.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(rows[0]?.one, 1);
  });

  it('a client checked out with connect() whose connection drops fails its next query, not the process', async () => {
    const db = pool();
    const client = await db.connect();
    try {
      await dropConnection(client);
      await assert.rejects(client.query('SELECT 1'), /not queryable/);
    } finally {
      client.release();
    }
    assert.equal(db.totalCount, 0, 'released, it is destroyed');
    assert.equal((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  it('a query Postgres does not answer fails after the bound, and its connection is destroyed', async () => {
    const db = pool(500);
    await db.query('SELECT 1'); // an idle connection: the query below gets it
    server.pause();
    try {
      const { outcome, ms } = await settle(db.query('SELECT 1'));
      assert.equal(outcome, 'rejected: Query read timeout');
      assert.ok(ms < 2_000, `after ${Math.round(ms)} ms`);
      assert.equal(db.totalCount, 0, 'the connection waiting on the query is not handed out again');
    } finally {
      server.resume();
    }
    assert.equal((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  it('withTransaction on a Postgres that does not answer fails after one bound: no rollback waits behind it', async () => {
    const db = pool(1_000);
    await db.query('SELECT 1');
    server.pause();
    try {
      const { outcome, ms } = await settle(withTransaction(db, (client) => client.query('SELECT 1')));
      assert.equal(outcome, 'rejected: Query read timeout');
      assert.ok(ms < 1_900, `after ${Math.round(ms)} ms`);
      assert.equal(db.totalCount, 0, 'the client was destroyed');
    } finally {
      server.resume();
    }
  });
});
