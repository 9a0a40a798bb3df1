// The app's pg pool against a real Postgres whose connections are dropped under it: a checked-out
// client losing its connection fails its caller, never the process.
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

  function pool(): pg.Pool {
    const p = createPool({ connectionString: url, poolSize: 2 } as Parameters<typeof createPool>[0]);
    pools.push(p);
    return p;
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
});
