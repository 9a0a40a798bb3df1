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
  return pool;
}

/** Runs `fn` in one transaction on one client; rolls back on any error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
