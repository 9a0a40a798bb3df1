/**
 * A real, throwaway redis-server for tests (no persistence), on 127.0.0.1.
 *
 *   const redis = await startRedis({ password: 'secret' });
 *   ... redis.env() ...
 *   await redis.destroy();
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  freePort,
  pausable,
  registerTempDir,
  type ServerProcess,
  spawnServer,
  unregisterTempDir,
  waitUntilServing,
} from './processes.ts';

export interface StartRedisOptions {
  /** Sets `--requirepass`. Pass `true` for a random one. */
  password?: string | true;
  /** Port to listen on (default: a free one). Kept across stop()/start(). */
  port?: number;
  /** Extra `--name value` arguments. */
  args?: string[];
  /** How long to wait for PING (default 15 s). */
  startTimeoutMs?: number;
}

export interface RedisEnv {
  REDIS_HOST: string;
  REDIS_PORT: string;
  REDIS_PASSWORD?: string;
}

export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly password: string | undefined;
  /** PID of the running redis-server (changes on start()); undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** redis://[:PASSWORD@]127.0.0.1:PORT */
  readonly url: string;
  env(): RedisEnv;
  /** Sends commands over a fresh connection (AUTH first when there is a password). */
  command(...args: string[]): Promise<RespValue>;
  output(): string;
  /**
   * Freezes the server (SIGSTOP): connections stay open and new ones are accepted by the kernel,
   * but nothing answers, as with a stalled host. Call resume() in `finally`.
   */
  pause(): void;
  /** Undoes pause() (SIGCONT); a no-op when not paused. */
  resume(): void;
  /** SIGTERM (no persistence, so nothing is saved), waits for exit. */
  stop(): Promise<void>;
  /** Starts again on the same port. No-op while running. */
  start(): Promise<void>;
  /** stop() and remove the working directory. */
  destroy(): Promise<void>;
}

export function findRedisServer(): string {
  const fromEnv = process.env.REDIS_SERVER_BIN;
  const candidates = [
    ...(fromEnv ? [fromEnv] : []),
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, 'redis-server')),
    '/usr/bin/redis-server',
    '/usr/local/bin/redis-server',
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(
    'redis-server not found on PATH or in /usr/bin: install the "redis-server" package ' +
      '(apt-get install redis-server) or set REDIS_SERVER_BIN.',
  );
}

// ---------------------------------------------------------------------------
// Minimal RESP client (enough for readiness checks and tests)

export type RespValue = string | number | null | RespError | RespValue[];

export class RespError extends Error {
  override name = 'RespError';
}

function encodeCommand(args: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(arg, 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one RESP value at `offset`; undefined when more bytes are needed. */
function parseResp(buf: Buffer, offset: number): { value: RespValue; next: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buf[offset] ?? 0);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const after = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new RespError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items: RespValue[] = [];
      let next = after;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, next);
        if (!item) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`Unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/**
 * Sends the commands over one new connection and returns one reply per command
 * (error replies come back as RespError values, not thrown).
 */
export function redisCommands(
  target: { host?: string; port: number },
  commands: ReadonlyArray<readonly string[]>,
  timeoutMs = 2000,
): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host ?? '127.0.0.1', port: target.port });
    let buf = Buffer.alloc(0);
    let offset = 0;
    const replies: RespValue[] = [];
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    const timer = setTimeout(
      () => finish(new Error(`redis 127.0.0.1:${target.port}: no full reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('connect', () => {
      socket.write(Buffer.concat(commands.map(encodeCommand)));
    });
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          const parsed = parseResp(buf, offset);
          if (!parsed) break;
          replies.push(parsed.value);
          offset = parsed.next;
          if (replies.length === commands.length) {
            finish();
            return;
          }
        }
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => {
      if (replies.length < commands.length) {
        finish(
          new Error(`redis 127.0.0.1:${target.port} closed the connection after ${replies.length} replies`),
        );
      }
    });
  });
}

// ---------------------------------------------------------------------------

/** Starts a throwaway redis-server on 127.0.0.1. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  const password = opts.password === true ? randomBytes(18).toString('hex') : opts.password;
  const startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'gpt-proxy-redis-'));
  registerTempDir(dir);

  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--dir',
    dir,
    ...(password ? ['--requirepass', password] : []),
    ...(opts.args ?? []),
  ];

  let proc: ServerProcess | undefined;
  let destroyed = false;

  const withAuth = (...cmds: string[][]): string[][] => (password ? [['AUTH', password], ...cmds] : cmds);

  const start = async (): Promise<void> => {
    if (destroyed) throw new Error('startRedis: start() after destroy()');
    if (proc && !proc.exitInfo) return;
    const current = await spawnServer(binary, args, { name: `redis:${port}`, cwd: dir });
    proc = current;
    const answersPing = async () => {
      const replies = await redisCommands({ port }, withAuth(['PING']), 1000);
      const pong = replies[replies.length - 1];
      if (pong instanceof RespError) throw pong;
      return pong === 'PONG';
    };
    await waitUntilServing(current, answersPing, {
      timeoutMs: startTimeoutMs,
      intervalMs: 25,
      what: `redis-server on 127.0.0.1:${port} to answer PING`,
      stopSignal: 'SIGKILL',
    });
  };

  const pausing = pausable(() => (proc && !proc.exitInfo ? proc.pid : undefined));

  const stop = async (): Promise<void> => {
    const current = proc;
    if (!current || current.exitInfo) return;
    pausing.resume(); // a stopped server would not act on the signal
    await current.stop('SIGTERM', 10_000);
  };

  const server: RedisServer = {
    host: '127.0.0.1',
    port,
    password,
    get pid() {
      return proc && !proc.exitInfo ? proc.pid : undefined;
    },
    get running() {
      return proc !== undefined && !proc.exitInfo;
    },
    url: password
      ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`
      : `redis://127.0.0.1:${port}`,
    env: () => ({
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(port),
      ...(password ? { REDIS_PASSWORD: password } : {}),
    }),
    async command(...commandArgs: string[]) {
      const replies = await redisCommands({ port }, withAuth(commandArgs));
      const reply = replies[replies.length - 1];
      if (reply === undefined) throw new Error('redis: no reply');
      if (reply instanceof RespError) throw reply;
      return reply;
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
      await rm(dir, { recursive: true, force: true });
      unregisterTempDir(dir);
    },
  };

  try {
    await start();
  } catch (err) {
    destroyed = true;
    await rm(dir, { recursive: true, force: true });
    unregisterTempDir(dir);
    throw err;
  }
  return server;
}
