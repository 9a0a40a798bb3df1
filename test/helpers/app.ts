import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { loadConfig } from '../../app/src/config/index.ts';
import { createPool } from '../../app/src/db/pool.ts';
import { buildApp } from '../../app/src/http/app.ts';
import { createLogger, errorFields } from '../../app/src/log/logger.ts';
import { secretsOf } from '../../app/src/log/redact.ts';
import { createRegistry } from '../../app/src/metrics/server.ts';
import { createRedis } from '../../app/src/redis/client.ts';
import { createServices, type ServiceOverrides, type Services } from '../../app/src/services.ts';
import { freePort, type ServerProcess, spawnServer, waitFor } from './processes.ts';

const MAIN = fileURLToPath(new URL('../../app/src/main.ts', import.meta.url));

export interface InProcessApp {
  url: string;
  port: number;
  services: Services;
  registry: Registry;
  /** The app's Redis connection (to hold or fail its rate-limit calls, see redis-gate.ts). */
  redis: Redis;
  /**
   * Runs now the bookkeeping of the requests answered so far (access lines, request metrics, usage
   * rows into the buffer, token settlements), which the app batches for up to 10 ms after a response.
   */
  settle(): void;
  /** Every log line the app wrote, as text (for secret canary checks) and parsed; settles first. */
  logText(): string;
  logs(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Runs the app inside the test process, built exactly as main.ts builds it but with the log
 * captured and optional service overrides (short timeouts), listening on a free loopback port.
 */
export async function startAppInProcess(
  env: Record<string, string>,
  overrides: ServiceOverrides = {},
): Promise<InProcessApp> {
  const config = loadConfig(env, [
    'database',
    'redis',
    'encryption',
    'upstream',
    'server',
    'log',
    'rateLimit',
    'usage',
  ]);
  const secrets = secretsOf(config);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger(config.log, 'gpt-proxy', sink);
  const db = createPool(config.database, { onIdleError: () => {} });
  const redis = createRedis(config.redis, (err) => logger.warn(errorFields(err, secrets), 'redis error'));
  const registry = createRegistry();
  const services = await createServices(config, { db, redis, logger, secrets, registry }, overrides);
  // Let the start-up model listing finish, so tests that script upstream answers see only their own calls.
  await services.models.list(AbortSignal.timeout(5_000)).catch(() => {});
  const app = buildApp({ services, config, logger, secrets });
  const server: Server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const settle = () => services.afterResponse.flush();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    services,
    registry,
    redis,
    settle,
    logText: () => {
      settle();
      return lines.join('\n');
    },
    logs: () => {
      settle();
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.close();
      await Promise.allSettled([db.end(), redis.quit()]);
      redis.disconnect();
    },
  };
}

export interface AppProcess {
  url: string;
  port: number;
  metricsPort: number;
  pid: number;
  process: ServerProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs the app as its own process (`node app/src/main.ts`), the way the container runs it, and waits until it serves. */
export async function startApp(opts: {
  env: Record<string, string>;
  port?: number;
  metricsPort?: number;
}): Promise<AppProcess> {
  const port = opts.port ?? (await freePort());
  const metricsPort = opts.metricsPort ?? (await freePort());
  const proc = await spawnServer(process.execPath, [MAIN], {
    name: `app:${port}`,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      ...opts.env,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health/live`)).ok, {
    timeoutMs: 20_000,
    what: `app on ${url}`,
  });
  return {
    url,
    port,
    metricsPort,
    pid: proc.pid,
    process: proc,
    async stop(signal = 'SIGTERM') {
      await proc.stop(signal, 35_000);
    },
  };
}
