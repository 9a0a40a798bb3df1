/**
 * A real, throwaway PostgreSQL server for tests, from the distribution's packages.
 *
 *   const pg = await startPostgres();
 *   const { url } = await pg.createDatabase();
 *   ...
 *   await pg.destroy();
 *
 * Binaries: $PG_BINDIR, else the highest /usr/lib/postgresql/<version>/bin with
 * initdb (Debian/Ubuntu), else initdb on PATH. As root the server runs as the
 * `postgres` OS user (the PID held is the postmaster itself).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chownSync, constants, existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import {
  freePort,
  pausable,
  registerTempDir,
  type ServerProcess,
  spawnServer,
  unregisterTempDir,
  waitUntilServing,
} from './processes.ts';

export interface StartPostgresOptions {
  /** Port to listen on (default: a free one). It is kept across stop()/start(). */
  port?: number;
  /** Extra server settings, passed as `-c name=value`. */
  settings?: Record<string, string | number | boolean>;
  /** How long to wait for the server to accept connections (default 30 s). */
  startTimeoutMs?: number;
}

export interface PostgresEnv {
  POSTGRES_HOST: string;
  POSTGRES_PORT: string;
  POSTGRES_USER: string;
  POSTGRES_PASSWORD: string;
  POSTGRES_DB: string;
}

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: 'postgres';
  readonly password: string;
  /** PID of the running postmaster (changes on start()); undefined while stopped. */
  readonly pid: number | undefined;
  readonly binDir: string;
  readonly dataDir: string;
  readonly running: boolean;
  /** postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE */
  url(database?: string): string;
  /** gpt-proxy's environment variables for this server. */
  env(database?: string): PostgresEnv;
  /** Creates a database (random name `test_<hex>` when none is given). */
  createDatabase(name?: string): Promise<{ name: string; url: string }>;
  /** A connected pg.Client (the caller ends it). */
  connect(database?: string): Promise<pg.Client>;
  /** Kept server output (log lines) for diagnostics. */
  output(): string;
  /**
   * Freezes the server (SIGSTOP to the postmaster and every backend): connections stay open and
   * new ones are accepted by the kernel, but nothing answers, as with a stalled host. Call
   * resume() in `finally`.
   */
  pause(): void;
  /** Undoes pause() (SIGCONT); a no-op when not paused. */
  resume(): void;
  /** Fast shutdown (SIGINT to the postmaster), waits for exit; keeps the data. */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data. No-op while running. */
  start(): Promise<void>;
  /** stop() and remove the data directory. */
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Binaries

let cachedBinDir: string | undefined;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function compareVersionsDesc(a: string, b: string): number {
  const pa = a
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  const pb = b
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pb[i] ?? 0) - (pa[i] ?? 0);
    if (d !== 0) return d;
  }
  return b.localeCompare(a);
}

/** Finds the directory holding initdb, postgres and pg_isready. */
export function findPostgresBinDir(): string {
  if (cachedBinDir) return cachedBinDir;
  const fromEnv = process.env.PG_BINDIR;
  if (fromEnv) {
    if (!isExecutable(join(fromEnv, 'initdb')) || !isExecutable(join(fromEnv, 'postgres'))) {
      throw new Error(`PG_BINDIR=${fromEnv} does not contain executable initdb and postgres`);
    }
    cachedBinDir = fromEnv;
    return fromEnv;
  }
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot).sort(compareVersionsDesc);
    for (const version of versions) {
      const bin = join(debianRoot, version, 'bin');
      if (isExecutable(join(bin, 'initdb')) && isExecutable(join(bin, 'postgres'))) {
        cachedBinDir = bin;
        return bin;
      }
    }
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'initdb');
    if (isExecutable(candidate)) {
      const bin = dirname(realpathSync(candidate));
      if (isExecutable(join(bin, 'postgres'))) {
        cachedBinDir = bin;
        return bin;
      }
    }
  }
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found: install the "postgresql" package ' +
      '(apt-get install postgresql) or set PG_BINDIR to the directory that holds them.',
  );
}

// ---------------------------------------------------------------------------
// OS user

interface OsUser {
  uid: number;
  gid: number;
  name: string;
}

function lookupUser(name: string): OsUser | undefined {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
    const fields = line.split(':');
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid, name };
  } catch {
    // not found
  }
  return undefined;
}

/** As root: the unprivileged user to run the server as. Otherwise undefined (run as ourselves). */
function serverUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = lookupUser('postgres') ?? lookupUser('nobody');
  if (!user) {
    throw new Error('Running as root, but there is no "postgres" OS user to run PostgreSQL as');
  }
  return user;
}

// ---------------------------------------------------------------------------

function run(
  file: string,
  args: string[],
  options: { uid?: number; gid?: number; env: NodeJS.ProcessEnv },
): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}${err && !stderr ? err.message : ''}` });
    });
  });
}

async function tryConnect(config: pg.ClientConfig): Promise<true> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Starts a throwaway PostgreSQL server (initdb + postgres) on 127.0.0.1. */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binDir = findPostgresBinDir();
  const user = serverUser();
  const ids = user ? { uid: user.uid, gid: user.gid } : {};
  const password = randomBytes(18).toString('hex');
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;

  // As root, /tmp (world-traversable) rather than a TMPDIR the postgres user may not reach.
  const base = process.env.PG_TMPDIR ?? (user ? '/tmp' : tmpdir());
  const root = await mkdtemp(join(base, 'gpt-proxy-pg-'));
  registerTempDir(root);
  const dataDir = join(root, 'data');
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: root,
    LANG: 'C',
    LC_ALL: 'C',
    TZ: 'UTC',
  };

  let proc: ServerProcess | undefined;
  let destroyed = false;
  let port = 0;

  try {
    if (user) chownSync(root, user.uid, user.gid);
    const pwfile = join(root, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) chownSync(pwfile, user.uid, user.gid);

    const initdb = join(binDir, 'initdb');
    const common = [
      '-D',
      dataDir,
      '-U',
      'postgres',
      `--pwfile=${pwfile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ];
    let result = await run(initdb, [...common, '--locale=C.UTF-8'], { ...ids, env: childEnv });
    if (!result.ok) {
      // Systems without a C.UTF-8 locale: plain C (initdb removes its half-made directory on failure).
      await rm(dataDir, { recursive: true, force: true });
      result = await run(initdb, [...common, '--locale=C'], { ...ids, env: childEnv });
    }
    await rm(pwfile, { force: true });
    if (!result.ok) throw new Error(`initdb failed:\n${result.output}`);

    port = opts.port ?? (await freePort());
  } catch (err) {
    unregisterTempDir(root);
    await rm(root, { recursive: true, force: true });
    throw err;
  }

  const settings: Record<string, string | number | boolean> = {
    listen_addresses: '127.0.0.1',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...opts.settings,
  };
  const serverArgs = ['-D', dataDir, '-p', String(port), '-k', root];
  for (const [key, value] of Object.entries(settings)) {
    serverArgs.push('-c', `${key}=${value === true ? 'on' : value === false ? 'off' : String(value)}`);
  }

  const connConfig = (database = 'postgres'): pg.ClientConfig => ({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database,
  });
  const url = (database = 'postgres') =>
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;

  const start = async (): Promise<void> => {
    if (destroyed) throw new Error('startPostgres: start() after destroy()');
    if (proc && !proc.exitInfo) return;
    const current = await spawnServer(join(binDir, 'postgres'), serverArgs, {
      name: `postgres:${port}`,
      env: childEnv,
      cwd: root,
      ...ids,
    });
    proc = current;
    await waitUntilServing(current, () => tryConnect(connConfig()), {
      timeoutMs: startTimeoutMs,
      intervalMs: 50,
      what: `postgres on 127.0.0.1:${port} to accept connections`,
      stopSignal: 'SIGQUIT',
    });
  };

  const pausing = pausable(() => (proc && !proc.exitInfo ? proc.pid : undefined));

  const stop = async (): Promise<void> => {
    const current = proc;
    if (!current || current.exitInfo) return;
    pausing.resume(); // a stopped server would not act on the signal
    // SIGINT = fast shutdown; escalate to SIGKILL after 20 s.
    await current.stop('SIGINT', 20_000);
  };

  const server: PostgresServer = {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    user: 'postgres',
    password,
    get pid() {
      return proc && !proc.exitInfo ? proc.pid : undefined;
    },
    binDir,
    dataDir,
    get running() {
      return proc !== undefined && !proc.exitInfo;
    },
    url,
    env: (database = 'postgres') => ({
      POSTGRES_HOST: '127.0.0.1',
      POSTGRES_PORT: String(port),
      POSTGRES_USER: 'postgres',
      POSTGRES_PASSWORD: password,
      POSTGRES_DB: database,
    }),
    async createDatabase(name?: string) {
      const dbName = name ?? `test_${randomBytes(6).toString('hex')}`;
      if (!IDENTIFIER.test(dbName)) {
        throw new Error(`createDatabase: invalid database name ${JSON.stringify(dbName)} (use [a-z0-9_])`);
      }
      const client = await server.connect('postgres');
      try {
        await client.query(`CREATE DATABASE "${dbName}"`);
      } finally {
        await client.end();
      }
      return { name: dbName, url: url(dbName) };
    },
    async connect(database = 'postgres') {
      const client = new pg.Client(connConfig(database));
      await client.connect();
      return client;
    },
    output: () => proc?.output() ?? '',
    pause: pausing.pause,
    resume: pausing.resume,
    stop,
    start,
    async destroy() {
      if (destroyed) return;
      await stop();
      destroyed = true;
      await rm(root, { recursive: true, force: true, maxRetries: 3 });
      unregisterTempDir(root);
    },
  };

  try {
    await start();
  } catch (err) {
    destroyed = true;
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
    unregisterTempDir(root);
    throw err;
  }
  return server;
}

/** libpq's variables for `database` on `pg`, with its binaries first on PATH (for scripts run against it). */
export function libpqEnv(pg: PostgresServer, database: string): Record<string, string> {
  return {
    PATH: `${pg.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: database,
  };
}
