import type { Logger } from '../log/logger.ts';
import { renewalDueAt, serving } from './inspect.ts';
import type { DirLock, LockHandle } from './lock.ts';
import type { CertManager, ReconcileResult } from './manager.ts';
import { type CertMetrics, observe } from './metrics.ts';
import type { StoredCert } from './store.ts';

export interface DaemonOptions {
  manager: CertManager;
  lock: DirLock;
  logger: Logger;
  metrics: CertMetrics;
  renewFraction: number;
  /** Longest sleep between checks; certd also wakes exactly when renewal becomes due. */
  checkIntervalMs: number;
}

/**
 * certd's loop: check at start and on a timer; when something is due, take the lock and let
 * the manager repair, renew or back off. Between checks it sleeps until the earliest of the
 * check interval, the moment renewal becomes due and the next allowed attempt, so a tick that
 * needs nothing orders nothing.
 */
export class CertDaemon {
  readonly #o: DaemonOptions;
  #timer: NodeJS.Timeout | undefined;
  #held: LockHandle | undefined;
  #stopped = false;
  #lastWait = '';
  #lastHolder: string | undefined;

  constructor(options: DaemonOptions) {
    this.#o = options;
    options.metrics.acmeEnabled.set(options.manager.acme ? 1 : 0);
  }

  start(): void {
    const loop = async () => {
      const delay = await this.tick();
      if (!this.#stopped) this.#timer = setTimeout(loop, delay);
    };
    void loop();
  }

  /** For a signal handler: stop the timer and give the lock back before the process exits. */
  stopSync(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#held?.releaseSync();
  }

  /** One check; returns the delay until the next one. */
  async tick(): Promise<number> {
    const { manager, metrics, logger, checkIntervalMs } = this.#o;
    metrics.checks.inc();
    let wakeAt = Date.now() + checkIntervalMs;
    try {
      let live = await manager.readLive();
      if (await manager.needsWork(live)) {
        const result = await this.#reconcile();
        if (result) {
          live = result.live;
          if (result.until) wakeAt = Math.min(wakeAt, result.until.getTime());
        } else {
          wakeAt = Math.min(wakeAt, Date.now() + 2_000); // someone else holds the lock: look again soon
        }
      }
      if (live.kind === 'ok' && !(await manager.needsWork(live))) {
        wakeAt = Math.min(wakeAt, renewalDueAt(live.info, this.#o.renewFraction).getTime());
      }
      observe(metrics, live, await manager.readLedger(), new Date());
      this.#warnIfExpiring(live);
    } catch (err) {
      logger.error(
        { err: { message: (err as Error).message } },
        `certificate check failed: ${(err as Error).message}`,
      );
    }
    return Math.max(1_000, wakeAt - Date.now());
  }

  async #reconcile(): Promise<ReconcileResult | undefined> {
    const { lock, manager, metrics, logger } = this.#o;
    const attempt = await lock.tryAcquire('certd');
    if (!('acquired' in attempt)) {
      if (attempt.heldBy?.token !== this.#lastHolder) {
        logger.info(
          { holder: attempt.heldBy },
          'another process is working on the certificate; waiting for it',
        );
      }
      this.#lastHolder = attempt.heldBy?.token;
      return undefined;
    }
    this.#held = attempt.acquired;
    try {
      const result = await manager.reconcile({ lock: attempt.acquired });
      if (result.order === 'issued') metrics.orders.inc({ result: 'success' });
      if (result.order === 'failed') {
        metrics.orders.inc({ result: 'failure' });
        metrics.failures.inc({ reason: result.error?.reason ?? 'ca_error' });
      }
      if (result.order === 'waiting') this.#logWait(result);
      return result;
    } finally {
      this.#held = undefined;
      await attempt.acquired.release();
    }
  }

  #logWait(result: ReconcileResult): void {
    const key = `${result.until?.toISOString()} ${result.why}`;
    if (key === this.#lastWait) return; // once per distinct wait, not on every tick
    this.#lastWait = key;
    this.#o.logger.info(
      { nextAttemptAt: result.until?.toISOString(), because: result.why },
      `renewal is due; next attempt at ${result.until?.toISOString()} (${result.why})`,
    );
  }

  #warnIfExpiring(live: StoredCert): void {
    if (live.kind !== 'ok') return;
    const { info } = live;
    const now = Date.now();
    const remaining = info.notAfter.getTime() - now;
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    const fields = { ...serving(info), hoursLeft: Math.round(remaining / 360_000) / 10 };
    if (remaining <= 0) {
      this.#o.logger.error(fields, 'the certificate in live/ has expired; clients will refuse it');
    } else if (this.#o.manager.acme && info.selfSigned) {
      this.#o.logger.warn(fields, 'serving the self-signed placeholder: no CA-issued certificate yet');
    } else if (remaining < (this.#o.renewFraction * lifetime) / 2) {
      this.#o.logger.warn(fields, 'the certificate expires soon and renewal has not succeeded yet');
    }
  }
}
