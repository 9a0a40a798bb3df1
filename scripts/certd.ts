// certd: keeps a valid certificate for DOMAIN in CERT_DIR/live (a self-signed placeholder until
// the CA's arrives), renews it before it expires, and serves its metrics on METRICS_PORT.
// Usage: npm run certd [-- --check-interval SECONDS] [--retry-min SECONDS] [--retry-max SECONDS]
import { parseArgs } from 'node:util';
import { CertDaemon } from '../app/src/certs/daemon.ts';
import { createCertMetrics } from '../app/src/certs/metrics.ts';
import { setupCerts } from '../app/src/certs/setup.ts';
import { createLogger } from '../app/src/log/logger.ts';
import { createRegistry, startMetricsServer } from '../app/src/metrics/server.ts';
import { runCli, secondsOption } from './cli.ts';

const USAGE = 'certd [--check-interval SECONDS] [--retry-min SECONDS] [--retry-max SECONDS]';

runCli('certd', USAGE, async (ctx) => {
  const { values } = parseArgs({
    options: {
      'check-interval': { type: 'string', default: '600' },
      'retry-min': { type: 'string', default: '60' },
      'retry-max': { type: 'string', default: '21600' },
    },
  });
  const checkIntervalMs = secondsOption(values['check-interval'], '--check-interval') * 1000;
  const backoff = {
    minMs: secondsOption(values['retry-min'], '--retry-min') * 1000,
    maxMs: secondsOption(values['retry-max'], '--retry-max') * 1000,
  };
  // HOST is the metrics listener's address too, as for the proxy (0.0.0.0 in the container).
  const config = ctx.load(['acme', 'metrics', 'log', 'server']);
  const logger = createLogger(config.log, 'certd');
  const { manager, lock } = await setupCerts(config.acme, logger, backoff);
  const registry = createRegistry();
  const metrics = createCertMetrics(registry);
  await startMetricsServer(registry, config.metrics.port, config.server.host);
  const { domain, directory, certDir, webroot, renewFraction } = config.acme;
  const daemon = new CertDaemon({ manager, lock, logger, metrics, renewFraction, checkIntervalMs });
  logger.info(
    {
      domain,
      ca: directory.kind === 'acme' ? directory.url : 'self-signed',
      certDir,
      webroot,
      metricsPort: config.metrics.port,
    },
    'certd started',
  );
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      daemon.stopSync();
      logger.info({ signal }, 'certd stopped');
      process.exit(0);
    });
  }
  daemon.start();
  await new Promise(() => {}); // runs until a signal
  return 0;
});
