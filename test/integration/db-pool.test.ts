// The app's pg pool against a real Postgres whose connections are dropped under it, or that stops
// answering: the caller gets an error (within a bound), never the process.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { createPool, withTransaction } from '../../app/src/db/pool.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';

describe('database pool (real Postgres)', { timeout: 60_000 }, () => {
  let server: PostgresServer;
  let url: string;
  let database: string;
  let admin: pg.Client;
  const pools: pg.Pool[] = [];

  before(async () => {
    server = await startPostgres();
    ({ url, name: database } = await server.createDatabase());
    admin = await server.connect();
  });
  after(async () => {
    await Promise.allSettled(pools.map((p) => p.end()));
    await admin?.end();
    await server?.destroy();
  });

  function pool(queryTimeoutMs?: number, connectionString = url): pg.Pool {
    const config = { connectionString, poolSize: 2 } as Parameters<typeof createPool>[0];
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

  it('a query that timed out waiting on a lock leaves no backend waiting on it', async () => {
    const db = pool(500);
    const locker = await server.connect(database);
    try {
      await locker.query('CREATE TABLE locked (id int)');
      // An interrupted restore, a migration's ALTER TABLE: a session holding the table.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE locked IN ACCESS EXCLUSIVE MODE');
      const { outcome } = await settle(db.query('SELECT * FROM locked'));
      assert.equal(outcome, 'rejected: Query read timeout');
      // The client closed its socket; the backend, asleep on the lock, must notice that itself.
      const waiting = async () =>
        (
          await admin.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'gpt-proxy' AND wait_event_type = 'Lock'",
            [database],
          )
        ).rowCount;
      const deadline = Date.now() + 5_000;
      while ((await waiting()) !== 0 && Date.now() < deadline) await sleep(100);
      assert.equal(await waiting(), 0, 'a backend of the app still waits on the lock');
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  it('the server bounds the backends as well, also for a DATABASE_URL with options of its own', async () => {
    const show = async (db: pg.Pool) => {
      const settings = ['client_connection_check_interval', 'statement_timeout', 'search_path'];
      const { rows } = await db.query<{ name: string; setting: string }>(
        'SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name',
        [settings],
      );
      return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    };
    assert.deepEqual(await show(pool()), {
      client_connection_check_interval: '1s',
      statement_timeout: '305s', // just past the longest client-side bound (a usage report's)
      search_path: '"$user", public',
    });
    const own = `${url}?options=${encodeURIComponent('-c search_path=elsewhere')}`;
    assert.deepEqual(await show(pool(undefined, own)), {
      client_connection_check_interval: '1s',
      statement_timeout: '305s',
      search_path: 'elsewhere',
    });
    // Migrations have no client-side bound, and get no statement_timeout.
    assert.equal((await show(pool(0))).statement_timeout, '0');
  });
});
