import { createServer } from 'node:http';
import { loadConfigOrExit } from './config/index.ts';
import { createPool } from './db/pool.ts';
import { buildApp } from './http/app.ts';
import { createLogger, errorFields } from './log/logger.ts';
import { secretsOf } from './log/redact.ts';
import { createRegistry, startMetricsServer } from './metrics/server.ts';
import { createRedis } from './redis/client.ts';
import { createServices } from './services.ts';

// Builds everything once, listens, and drains on SIGTERM.
const config = loadConfigOrExit([
  'database',
  'redis',
  'encryption',
  'upstream',
  'server',
  'metrics',
  'log',
  'rateLimit',
  'usage',
]);
if (config.server.port === config.metrics.port) {
  process.stderr.write('gpt-proxy: invalid configuration:\n  - METRICS_PORT: must differ from PORT\n');
  process.exit(78);
}
const secrets = secretsOf(config);
const logger = createLogger(config.log, 'gpt-proxy');
const db = createPool(config.database, {
  onIdleError: (err) => logger.warn(errorFields(err, secrets), 'database connection lost'),
});
const redis = createRedis(config.redis, (err) =>
  logger.warn(errorFields(err, secrets), 'redis connection error'),
);
const services = await createServices(config, { db, redis, logger, secrets });
const app = buildApp({
  services,
  logger,
  secrets,
  maxBodyBytes: config.server.maxBodyBytes,
  logBodies: config.log.promptBody,
});
const registry = createRegistry();
const metricsServer = await startMetricsServer(registry, config.metrics.port, config.server.host);
const server = createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(config.server.port, config.server.host, () => {
  logger.info(
    { host: config.server.host, port: config.server.port, metricsPort: config.metrics.port },
    'listening',
  );
});

const DRAIN_MS = 30_000;
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'draining');
  const force = setTimeout(() => server.closeAllConnections(), DRAIN_MS).unref();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  clearTimeout(force);
  metricsServer.close();
  await services.close();
  await Promise.allSettled([db.end(), redis.quit()]);
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
