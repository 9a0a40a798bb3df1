import pg from 'pg';
import type { Config } from '../config/index.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  applicationName?: string;
  /** Called when an idle connection dies (the next query reconnects by itself). */
  onIdleError?: (err: Error) => void;
}

/**
 * One pg pool per process, sized by DB_POOL_SIZE. Timeouts are short so a dead database
 * answers the caller with an error in seconds instead of queueing requests forever.
 */
export function createPool(db: Config['database'], options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    ...(db.connectionString
      ? { connectionString: db.connectionString }
      : { host: db.host, port: db.port, user: db.user, database: db.database, password: db.password }),
    max: db.poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'gpt-proxy',
  });
  // Without a listener, an idle client losing its connection would crash the process.
  pool.on('error', (err) => options.onIdleError?.(err));
  // pg-pool listens for a client's 'error' only while the client is idle. One checked out (a
  // transaction, a script's session) whose connection drops (Postgres restarted, the backend
  // terminated) would emit it to nobody, and the process would exit, cutting every stream. The
  // error reaches its holder anyway: it fails the query running and every later one on that client,
  // and the client, marked unusable, is destroyed when released.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * Runs `fn` in one transaction on one client; rolls back on any error. A client whose rollback
 * fails (its connection is gone) is released with that error, so the pool destroys it rather than
 * hand it out again.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
