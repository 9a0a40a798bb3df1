import type { Server } from 'node:http';
import type { Logger } from './log/logger.ts';
import { DRAIN_GRACE_MS } from './shutdown-budget.ts';

export interface DrainOptions {
  server: Server;
  logger: Logger;
  /** How long open requests and streams may take to finish (SHUTDOWN_GRACE_SECONDS). */
  graceMs?: number;
  onDrainStart: () => void;
  /** Flushes and closes what the requests used, after the last one finished. */
  afterDrain: () => Promise<void>;
  /** Resolves once the log lines written so far are out (the last ones, before exit). */
  flushLog?: () => Promise<void>;
}

/**
 * Graceful shutdown on SIGTERM/SIGINT: stop accepting connections, close idle keep-alive ones,
 * let open requests and streams finish (bounded by `graceMs`, then cut), flush, exit 0.
 */
export function drainOnSignals(options: DrainOptions): void {
  const grace = options.graceMs ?? DRAIN_GRACE_MS;
  let stopping = false;
  const drain = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    options.logger.info({ signal, graceMs: grace }, 'draining');
    options.onDrainStart();
    const closed = new Promise<void>((resolve) => options.server.close(() => resolve()));
    options.server.closeIdleConnections();
    const idle = setInterval(() => options.server.closeIdleConnections(), 250);
    const cut = setTimeout(() => {
      options.logger.warn('grace period over: closing the remaining connections');
      options.server.closeAllConnections();
    }, grace);
    await closed;
    clearInterval(idle);
    clearTimeout(cut);
    await options.afterDrain();
    options.logger.info('stopped');
    await options.flushLog?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void drain('SIGTERM'));
  process.on('SIGINT', () => void drain('SIGINT'));
}
