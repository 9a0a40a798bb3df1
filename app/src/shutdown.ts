import type { Server } from 'node:http';
import type { InFlight } from './http/in-flight.ts';
import type { Logger } from './log/logger.ts';
import { CLOSE_MS, CUT_SETTLE_MS, DRAIN_GRACE_MS, LOG_FLUSH_MS, within } from './shutdown-budget.ts';

export interface DrainOptions {
  server: Server;
  logger: Logger;
  /** How long open requests and streams may take to finish (SHUTDOWN_GRACE_SECONDS). */
  graceMs?: number;
  /** The requests still running: those cut at the end of the grace finish after their sockets close. */
  inFlight?: Pick<InFlight, 'count' | 'idle'>;
  onDrainStart: () => void;
  /** Flushes and closes what the requests used, after the last one finished. */
  afterDrain: () => Promise<void>;
  /** Resolves once the log lines written so far are out (the last ones, before exit). */
  flushLog?: () => Promise<void>;
}

/**
 * Graceful shutdown on SIGTERM/SIGINT: stop accepting connections, close idle keep-alive ones,
 * let open requests and streams finish (bounded by `graceMs`, then cut), wait for the handlers of
 * those cut to finish (bounded), flush (bounded), exit 0 — or 1 if closing outlasted its bound.
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
    // Every socket is gone, but a request cut off just now is still unwinding: its usage row is
    // queued in its handler's last step, which must come before the final write.
    if (options.inFlight && !(await options.inFlight.idle(CUT_SETTLE_MS))) {
      options.logger.warn({ inFlight: options.inFlight.count }, 'requests still running after the drain');
    }
    // Each step below bounds its own waits; this is the net for one that does not, so the exit
    // still comes before the container's stop timeout (shutdown-budget.ts) and its SIGKILL.
    const closedInTime = await within(CLOSE_MS, options.afterDrain());
    if (!closedInTime) options.logger.error({ boundMs: CLOSE_MS }, 'closing did not finish in time');
    options.logger.info('stopped');
    if (options.flushLog) await within(LOG_FLUSH_MS, options.flushLog());
    process.exit(closedInTime ? 0 : 1);
  };
  process.on('SIGTERM', () => void drain('SIGTERM'));
  process.on('SIGINT', () => void drain('SIGINT'));
}
