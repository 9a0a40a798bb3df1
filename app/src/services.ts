import type { Redis } from 'ioredis';
import type pg from 'pg';
import { ApiKeyAuthenticator } from './auth/api-key-auth.ts';
import { LastUsedRecorder } from './auth/last-used.ts';
import type { Config } from './config/index.ts';
import { SecretBox } from './crypto/secret-box.ts';
import { errorFields, type Logger } from './log/logger.ts';
import { Forwarder, type ForwarderTimeouts } from './upstream/forwarder.ts';
import { UpstreamKeyStore } from './upstream/key-store.ts';
import { ModelCatalog } from './upstream/model-catalog.ts';
import { OpenAiAdapter } from './upstream/openai-adapter.ts';
import { UpstreamPool } from './upstream/pool.ts';

export type ServiceConfig = Pick<Config, 'encryption' | 'upstream'>;

export interface Services {
  authenticator: ApiKeyAuthenticator;
  lastUsed: LastUsedRecorder;
  pool: UpstreamPool;
  forwarder: Forwarder;
  models: ModelCatalog;
  healthChecks: { database: () => Promise<unknown>; redis: () => Promise<unknown> };
  close(): Promise<void>;
}

export interface ServiceOverrides {
  timeouts?: Partial<ForwarderTimeouts>;
  authTtlMs?: number;
  poolRefreshMs?: number;
}

/** Builds every long-lived service once, wired by constructor injection. */
export async function createServices(
  config: ServiceConfig,
  deps: { db: pg.Pool; redis: Redis; logger: Logger; secrets: readonly string[] },
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const { db, redis, logger, secrets } = deps;
  const report = (what: string) => (err: unknown) =>
    logger.error(errorFields(err, secrets), `${what} failed`);
  const box = new SecretBox(config.encryption);
  const store = new UpstreamKeyStore({
    pool: db,
    box,
    onUnreadable: (id, err) =>
      logger.error({ upstreamKeyId: id, ...errorFields(err, secrets) }, 'cannot open upstream key'),
  });
  const pool = new UpstreamPool({
    store,
    pool: db,
    adapters: { openai: new OpenAiAdapter(config.upstream.openai.baseUrl) },
    refreshMs: overrides.poolRefreshMs,
    onError: (what, err) => report(what)(err),
  });
  await pool.start();
  const forwarder = new Forwarder({ pool, timeouts: overrides.timeouts });
  const lastUsed = new LastUsedRecorder({ pool: db, onError: report('record key last use') });
  return {
    authenticator: new ApiKeyAuthenticator({ pool: db, ttlMs: overrides.authTtlMs }),
    lastUsed,
    pool,
    forwarder,
    models: new ModelCatalog({ pool, forwarder }),
    healthChecks: { database: () => db.query('SELECT 1'), redis: () => redis.ping() },
    async close() {
      pool.stop();
      await lastUsed.close();
      await forwarder.close();
    },
  };
}
