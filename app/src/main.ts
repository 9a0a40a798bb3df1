import { createServer } from 'node:http';
import { loadConfigOrExit } from './config/index.ts';
import { createPool } from './db/pool.ts';
import { buildApp } from './http/app.ts';
import { bufferedStdout, createLogger, errorFields } from './log/logger.ts';
import { secretsOf } from './log/redact.ts';
import { createRegistry, startMetricsServer } from './metrics/server.ts';
import { createRedis } from './redis/client.ts';
import { createServices } from './services.ts';
import { drainOnSignals } from './shutdown.ts';
import { END_CONNECTIONS_MS, within } from './shutdown-budget.ts';

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
const logOutput = bufferedStdout();
const logger = createLogger(config.log, 'gpt-proxy', logOutput);
const db = createPool(config.database, {
  onIdleError: (err) => logger.warn(errorFields(err, secrets), 'database connection lost'),
});
const redis = createRedis(config.redis, (err) =>
  logger.warn(errorFields(err, secrets), 'redis connection error'),
);
const registry = createRegistry();
const services = await createServices(config, { db, redis, logger, secrets, registry });
let draining = false;
const app = buildApp({ services, config, logger, secrets, draining: () => draining });
const metricsServer = await startMetricsServer(registry, config.metrics.port, config.server.host);
const server = createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(config.server.port, config.server.host, () => {
  logger.info(
    { host: config.server.host, port: config.server.port, metricsPort: config.metrics.port },
    'listening',
  );
});

drainOnSignals({
  server,
  logger,
  graceMs: config.server.shutdownGraceMs,
  inFlight: services.inFlight,
  flushLog: () => logOutput.drained(),
  onDrainStart: () => {
    draining = true;
  },
  async afterDrain() {
    const unwritten = await services.close();
    // The record of rows lost at exit: this line (a scrape may well not come before the exit).
    if (unwritten > 0) logger.error({ unwritten }, 'usage rows could not be written before exit');
    // A connection still waiting on a write given up on would hold db.end() forever.
    await within(END_CONNECTIONS_MS, Promise.allSettled([db.end(), redis.quit()]));
    // Last, so a scrape until the exit still sees the final write's counts (rows dropped).
    metricsServer.close();
  },
});
