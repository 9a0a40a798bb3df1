import type { Redis } from 'ioredis';
import type pg from 'pg';
import { ApiKeyAuthenticator } from './auth/api-key-auth.ts';
import { LastUsedRecorder } from './auth/last-used.ts';
import type { Config } from './config/index.ts';
import { SecretBox } from './crypto/secret-box.ts';
import { errorFields, type Logger } from './log/logger.ts';
import { AzureAdapter } from './upstream/azure-adapter.ts';
import { Forwarder, type ForwarderTimeouts } from './upstream/forwarder.ts';
import { UpstreamKeyStore } from './upstream/key-store.ts';
import { ModelCatalog } from './upstream/model-catalog.ts';
import { OpenAiAdapter } from './upstream/openai-adapter.ts';
import { UpstreamPool } from './upstream/pool.ts';
import { KeyProber } from './upstream/prober.ts';

export type ServiceConfig = Pick<Config, 'encryption' | 'upstream'>;

export interface Services {
  authenticator: ApiKeyAuthenticator;
  lastUsed: LastUsedRecorder;
  pool: UpstreamPool;
  forwarder: Forwarder;
  models: ModelCatalog;
  healthChecks: { database: () => Promise<unknown>; redis: () => Promise<unknown> };
  /** The shared pg pool and the upstream-key sealer, for the admin API. */
  db: pg.Pool;
  box: SecretBox;
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
  // Both providers are always available: keys added through the admin API may be of either.
  const adapters = {
    openai: new OpenAiAdapter(config.upstream.openai.baseUrl),
    azure: new AzureAdapter(config.upstream.azure.apiVersion),
  };
  const pool = new UpstreamPool({
    store,
    pool: db,
    adapters,
    refreshMs: overrides.poolRefreshMs,
    firstProbeDelayMs: config.upstream.probeIntervalMs,
    onError: (what, err) => report(what)(err),
  });
  await pool.start();
  const forwarder = new Forwarder({ pool, timeouts: overrides.timeouts });
  const prober = new KeyProber({
    db,
    pool,
    adapters,
    dispatcher: forwarder.dispatcher,
    intervalMs: config.upstream.probeIntervalMs,
    onHealed: (id) => logger.info({ upstreamKeyId: id }, 'upstream key healed by probe'),
    onError: (what, err) => report(what)(err),
  });
  prober.start();
  const lastUsed = new LastUsedRecorder({ pool: db, onError: report('record key last use') });
  return {
    authenticator: new ApiKeyAuthenticator({ pool: db, ttlMs: overrides.authTtlMs }),
    lastUsed,
    pool,
    forwarder,
    models: new ModelCatalog({ pool, forwarder }),
    healthChecks: { database: () => db.query('SELECT 1'), redis: () => redis.ping() },
    db,
    box,
    async close() {
      prober.stop();
      pool.stop();
      await lastUsed.close();
      await forwarder.close();
    },
  };
}
