import pg from 'pg';
import type { Config } from '../config/index.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/**
 * How long one query may wait for its answer unless it sets its own bound (see `bounded`): far
 * above what the app's queries take (key lookups, batch inserts of usage rows, admin changes, a
 * retention batch), so only a database that stopped answering reaches it.
 */
const QUERY_TIMEOUT_MS = 30_000;

/**
 * Reports over usage_logs (the admin API's usage totals and request log) may scan months of rows:
 * their bound is just below nginx's proxy_read_timeout (340 s), past which nobody reads the answer.
 */
export const REPORT_TIMEOUT_MS = 300_000;

export interface PoolOptions {
  applicationName?: string;
  /** Called when an idle connection dies (the next query reconnects by itself). */
  onIdleError?: (err: Error) => void;
  /** The default bound on one query (QUERY_TIMEOUT_MS); 0 for none (migrations). */
  queryTimeoutMs?: number;
}

/**
 * How often a backend busy with a query (waiting on a lock, scanning) looks whether its client
 * is still there (client_connection_check_interval, Postgres 14 or newer).
 */
const CONNECTION_CHECK_MS = 1_000;

/**
 * One pg pool per process, sized by DB_POOL_SIZE. Timeouts are short so a dead database
 * answers the caller with an error in seconds instead of queueing requests forever: getting a
 * connection is bounded by connectionTimeoutMillis, and each query by query_timeout. That one is
 * client-side on purpose: a frozen server (a paused container, a stalled host, packets dropped)
 * cannot enforce a statement_timeout. On timeout the connection, still waiting on its query, is
 * destroyed when released. TCP keepalive finds a vanished peer under an idle connection.
 *
 * A destroyed connection alone does not stop its backend: one waiting on a lock (an interrupted
 * restore, a migration's ALTER TABLE) or scanning reads nothing from its socket, so it would stay,
 * holding a connection slot (key lookups time out every 3 s: max_connections is reached within a
 * minute), and a write given up on could still commit later. So the server bounds them too, set
 * at connection start (an external DATABASE_URL gets them as well): the backend checks its socket
 * every CONNECTION_CHECK_MS and ends itself when the client has closed it, and statement_timeout
 * stops any statement just after the longest client-side bound (REPORT_TIMEOUT_MS), should the
 * close never reach it (a network cut).
 */
export function createPool(db: Config['database'], options: PoolOptions = {}): pg.Pool {
  const queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
  const pool = new pg.Pool({
    ...withServerBounds(db),
    max: db.poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    query_timeout: queryTimeoutMs,
    // None where the client sets none (migrations may take as long as they take).
    statement_timeout: queryTimeoutMs === 0 ? undefined : Math.max(queryTimeoutMs, REPORT_TIMEOUT_MS) + 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
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
 * Where to connect, with the startup option that has the backend check its client. pg takes a
 * URL's own `options` over the config's, so a URL that has some gets ours added to them.
 */
function withServerBounds(db: Config['database']): pg.PoolConfig {
  const check = `-c client_connection_check_interval=${CONNECTION_CHECK_MS}`;
  if (!db.connectionString) {
    const { host, port, user, database, password } = db;
    return { host, port, user, database, password, options: check };
  }
  const url = new URL(db.connectionString);
  const own = url.searchParams.get('options');
  if (own === null) return { connectionString: db.connectionString, options: check };
  url.searchParams.set('options', `${own} ${check}`);
  return { connectionString: url.href };
}

/**
 * A query with its own bound in place of the pool's (pg reads `query_timeout` from the config):
 * at most REPORT_TIMEOUT_MS, past which the server's statement_timeout ends it anyway.
 */
export function bounded(text: string, values: unknown[], timeoutMs: number): pg.QueryConfig {
  return { text, values, query_timeout: timeoutMs } as pg.QueryConfig;
}

/**
 * One bound for the queries that answer one request between them: each gets what is left of `ms`,
 * so reports run back to back still answer within it (nginx gives up at 340 s).
 */
export function sharedBound(ms: number): (text: string, values: unknown[]) => pg.QueryConfig {
  const endsAt = performance.now() + ms;
  // At least 1 ms: a query_timeout of 0 would be none at all.
  return (text, values) => bounded(text, values, Math.max(1, Math.floor(endsAt - performance.now())));
}

/** pg's error for a query whose query_timeout passed (it has no code). */
function isQueryTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Query read timeout';
}

/**
 * Runs `fn` in one transaction on one client; rolls back on any error. A client whose rollback
 * fails (its connection is gone) is released with that error, so the pool destroys it rather than
 * hand it out again. After a query timeout there is no rollback: it would wait behind the query
 * still unanswered, and closing the connection rolls the transaction back as surely.
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
    if (isQueryTimeout(err)) broken = err as Error;
    else {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
