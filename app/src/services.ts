import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { ApiKeyAuthenticator } from './auth/api-key-auth.ts';
import { LastUsedRecorder } from './auth/last-used.ts';
import type { Config } from './config/index.ts';
import { SecretBox } from './crypto/secret-box.ts';
import { bounded } from './db/pool.ts';
import { AfterResponse } from './http/after-response.ts';
import { InFlight } from './http/in-flight.ts';
import { errorFields, type Logger } from './log/logger.ts';
import { throttled, throttledPerKey } from './log/throttled.ts';
import { DEPENDENCY_CHECK_TIMEOUT_MS, trackDependencies } from './metrics/dependency-health.ts';
import { createProxyMetrics, type ProxyMetrics } from './metrics/proxy-metrics.ts';
import { RateLimiter } from './ratelimit/limiter.ts';
import { FINAL_WRITE_MS, within } from './shutdown-budget.ts';
import { AzureAdapter } from './upstream/azure-adapter.ts';
import { Forwarder, type ForwarderTimeouts } from './upstream/forwarder.ts';
import { UpstreamKeyStore } from './upstream/key-store.ts';
import { ModelCatalog } from './upstream/model-catalog.ts';
import { OpenAiAdapter } from './upstream/openai-adapter.ts';
import { UpstreamPool } from './upstream/pool.ts';
import { KeyProber } from './upstream/prober.ts';
import { UsageRecorder } from './usage/recorder.ts';
import { UsageRetention } from './usage/retention.ts';

export type ServiceConfig = Pick<Config, 'encryption' | 'upstream' | 'rateLimit' | 'usage'>;

export interface Services {
  box: SecretBox;
  /** The shared pg pool, for the admin API. */
  db: pg.Pool;
  authenticator: ApiKeyAuthenticator;
  lastUsed: LastUsedRecorder;
  pool: UpstreamPool;
  forwarder: Forwarder;
  models: ModelCatalog;
  limiter: RateLimiter;
  usage: UsageRecorder;
  /** Per-request bookkeeping queued until the response is out (the access line, metrics, usage). */
  afterResponse: AfterResponse;
  /** The requests still running, which the shutdown waits for before the final writes. */
  inFlight: InFlight;
  metrics: ProxyMetrics;
  healthChecks: { database: () => Promise<unknown>; redis: () => Promise<unknown> };
  /** Stops timers and flushes what is buffered; returns the usage rows that could not be written. */
  close(): Promise<number>;
}

export interface ServiceOverrides {
  timeouts?: Partial<ForwarderTimeouts>;
  authTtlMs?: number;
  poolRefreshMs?: number;
  usageFlushMs?: number;
  usageMaxBuffer?: number;
  /** The model catalog's first wait before listing again after a failed listing. */
  modelRetryMs?: number;
}

/** Builds every long-lived service once, wired by constructor injection. */
export async function createServices(
  config: ServiceConfig,
  deps: { db: pg.Pool; redis: Redis; logger: Logger; secrets: readonly string[]; registry: Registry },
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const { db, redis, logger, secrets } = deps;
  const report = (what: string) => (err: unknown) =>
    logger.error(errorFields(err, secrets), `${what} failed`);
  const metrics = createProxyMetrics(deps.registry);
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
    onOutcome: (provider, outcome) => metrics.upstreamAttempts.inc({ provider, outcome }),
  });
  await pool.start();
  // As the pool sees them: a key whose cooldown is over counts as active, though no request has
  // used it since (else the "no active key" alert fires while requests would succeed).
  metrics.setKeyStateSource(() =>
    pool.states.map((s) => ({ provider: s.key.provider, state: pool.statusNow(s) })),
  );
  const forwarder = new Forwarder({
    pool,
    timeouts: overrides.timeouts,
    // Requests fail over to the keys that have the deployment, so only the log shows the gap.
    onDeploymentMissing: throttledPerKey(
      (keyId, deployment) => `${keyId}/${deployment}`,
      (keyId, deployment) =>
        logger.warn(
          { upstreamKeyId: keyId, deployment },
          'Azure resource of this upstream key has no such deployment (deleted, renamed, or under 5 minutes old): its requests go to other keys',
        ),
      60_000,
    ),
  });
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
  const usage = new UsageRecorder({
    db,
    metrics,
    flushIntervalMs: overrides.usageFlushMs,
    maxBuffer: overrides.usageMaxBuffer,
    onWriteError: (err, buffered) =>
      logger.warn({ buffered, ...errorFields(err, secrets) }, 'usage rows not written yet; will retry'),
    onDropped: (count) => logger.error({ dropped: count }, 'usage buffer full: oldest usage rows dropped'),
    onRefused: (requestIds, err) =>
      logger.error({ requestIds, ...errorFields(err, secrets) }, 'usage row refused by Postgres and dropped'),
    onLate: (requestId) => logger.error({ requestId }, 'usage row recorded after the final write: dropped'),
  });
  usage.start();
  const retention = new UsageRetention({
    db,
    days: config.usage.retentionDays,
    onError: report('usage retention'),
  });
  retention.start();
  const lastUsed = new LastUsedRecorder({ pool: db, onError: report('record key last use') });
  const models = new ModelCatalog({ pool, forwarder, retryMs: overrides.modelRetryMs });
  // Learn the served model names now, and keep learning them: they bound the metrics' model label.
  models.start();
  const limiter = new RateLimiter({
    redis,
    onError: throttled(report('settling rate-limit leases'), 10_000),
  });
  const afterResponse = new AfterResponse(report('bookkeeping after a response'));
  // Both callers give up after DEPENDENCY_CHECK_TIMEOUT_MS: so does the query, rather than hold a
  // connection for the pool's bound at every scrape while Postgres does not answer.
  const healthChecks = {
    database: () => db.query(bounded('SELECT 1', [], DEPENDENCY_CHECK_TIMEOUT_MS)),
    redis: () => redis.ping(),
  };
  trackDependencies(deps.registry, healthChecks);
  return {
    box,
    db,
    authenticator: new ApiKeyAuthenticator({ pool: db, ttlMs: overrides.authTtlMs }),
    lastUsed,
    pool,
    forwarder,
    models,
    limiter,
    usage,
    afterResponse,
    inFlight: new InFlight(),
    metrics,
    healthChecks,
    async close() {
      afterResponse.close();
      prober.stop();
      models.close();
      retention.stop();
      // The other last writes need Postgres or Redis too: they run alongside the usage rows' final
      // write and within the same bound, so one that hangs holds back neither the rows nor the exit.
      const others = Promise.allSettled([pool.stop(), lastUsed.close(), limiter.close()]);
      const [unwritten] = await Promise.all([usage.close(FINAL_WRITE_MS), within(FINAL_WRITE_MS, others)]);
      await forwarder.close();
      return unwritten;
    },
  };
}
