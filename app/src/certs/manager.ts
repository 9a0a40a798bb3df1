import type { Agent } from 'node:https';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log/logger.ts';
import { OrderError, storageError } from './errors.ts';
import { recordFailedAttempt } from './failures.ts';
import { type CertInfo, isDue, serving } from './inspect.ts';
import { type Ledger, readLedger } from './ledger.ts';
import type { BackoffPolicy } from './limits.ts';
import type { LockHandle } from './lock-handle.ts';
import { createPlaceholder } from './placeholder.ts';
import { type ReconcileResult, renewWithAcme } from './renew.ts';
import type { CertPair, CertStore, StoredCert } from './store.ts';

export type { ReconcileResult } from './renew.ts';

export interface ReconcileOptions {
  backoffFrom?: Date;
  lock?: LockHandle;
}

type Install = (pair: CertPair, message: string) => Promise<StoredCert>;

export interface ManagerOptions {
  config: Config['acme'];
  store: CertStore;
  logger: Logger;
  backoff: BackoffPolicy;
  /** acme-client's HTTPS agent (configureAcmeHttp); absent in self-signed mode. */
  agent?: Agent;
  now?: () => Date;
}

/**
 * Keeps live/ holding a servable certificate for DOMAIN. `reconcile` runs under the CERT_DIR
 * lock (certd and issue-cert take it): it repairs what is missing or unusable, then renews a
 * certificate that is due (an ACME order when the order record allows, or a new placeholder in
 * self-signed mode). It never deletes a file and never replaces a certificate with a worse one:
 * a failed order leaves live/ exactly as it was.
 */
export class CertManager {
  readonly ledgerPath: string;
  readonly #o: ManagerOptions;
  readonly #now: () => Date;
  /** Certificates whose directory was logged about already: once per process, not per check. */
  readonly #noted = new Set<string>();

  constructor(options: ManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.ledgerPath = join(options.store.dir, 'orders.json');
  }

  get acme(): boolean {
    return this.#o.config.directory.kind === 'acme';
  }

  readLive(): Promise<StoredCert> {
    return this.#o.store.readLive(this.#o.config.domain);
  }

  readLedger(): Promise<Ledger> {
    return readLedger(this.ledgerPath);
  }

  /** True when `reconcile` has something to do (read-only: decides whether to take the lock). */
  async needsWork(live: StoredCert): Promise<boolean> {
    if (live.kind !== 'ok') return true;
    return this.#isDue(live.info) || (await this.fromOtherDirectory(live.info));
  }

  #isDue(info: CertInfo): boolean {
    return isDue(info, this.acme, this.#o.config.renewFraction, this.#now());
  }

  /**
   * Whether the CA-issued certificate `info` came from another ACME directory than ACME_DIRECTORY
   * (letsencrypt-staging while trying things out, say): it is then replaced at once, not when
   * due. The order record names the directory of the certificate the last order installed. One
   * it does not name (installed before the record was kept, or by hand) is kept until it is due
   * and logged once: ordering anew on every start would only spend the CA's limits.
   */
  async fromOtherDirectory(info: CertInfo): Promise<boolean> {
    const { directory } = this.#o.config;
    if (directory.kind !== 'acme' || info.selfSigned) return false;
    const { issued } = await this.readLedger();
    if (issued?.serial === info.serial && issued.directoryUrl === directory.url) return false;
    const known = issued?.serial === info.serial;
    if (!this.#noted.has(info.serial)) {
      this.#noted.add(info.serial);
      const fields = { serial: info.serial, directory: directory.url };
      if (known) {
        this.#o.logger.info(
          { ...fields, issuedBy: issued.directoryUrl },
          'the certificate in live/ was issued by another ACME directory; replacing it',
        );
      } else {
        this.#o.logger.info(
          fields,
          'no record of the ACME directory that issued the certificate in live/ (installed before ' +
            'certd kept one, or by hand): keeping it until renewal is due. If another CA issued it, ' +
            'move live/fullchain.pem and live/privkey.pem aside and run issue-cert',
        );
      }
    }
    return known;
  }

  /**
   * `backoffFrom`: ignore our own backoff from failures before then (an operator's explicit run).
   * `lock`: the CERT_DIR lock held for this; nothing is installed once another process took it.
   * A failure to keep live/ in order (CERT_DIR not writable, ...) is recorded and logged as a
   * storage failure, like a failed order, so that it is counted and alerted on.
   */
  async reconcile({ backoffFrom, lock }: ReconcileOptions = {}): Promise<ReconcileResult> {
    const { config, store, logger, backoff, agent } = this.#o;
    const install = (pair: CertPair, message: string) => this.#install(pair, message, lock);
    let live: StoredCert & { kind: 'ok' };
    let fromOtherDirectory: boolean;
    try {
      live = await this.#upkeep(install);
      fromOtherDirectory = await this.fromOtherDirectory(live.info);
      if (!fromOtherDirectory && !this.#isDue(live.info)) return { live, order: 'not-needed' };
      if (config.directory.kind === 'self-signed') {
        const renewed = await install(
          createPlaceholder(config.domain, this.#now()),
          'renewed the placeholder',
        );
        return { live: renewed, order: 'not-needed' };
      }
    } catch (err) {
      return this.#failed(err);
    }
    if (!agent) throw new Error('ACME mode needs the HTTPS agent from configureAcmeHttp');
    const ctx = {
      config,
      acmeUrl: config.directory.url,
      agent,
      accountDir: store.accountDir,
      ledgerPath: this.ledgerPath,
      logger,
      backoff,
      now: this.#now,
      install,
    };
    return renewWithAcme(ctx, live, backoffFrom, fromOtherDirectory);
  }

  /** CERT_DIR's directories, and a usable pair in live/. */
  async #upkeep(install: Install): Promise<StoredCert & { kind: 'ok' }> {
    const { store } = this.#o;
    await store.prepare().catch((err: unknown) => {
      throw storageError(err, `creating the directories in ${store.dir}`);
    });
    const live = await this.#repair(await this.readLive(), install);
    if (live.kind !== 'ok') throw new Error(`live/ is still not usable after repair (${live.kind})`);
    return live;
  }

  async #failed(err: unknown): Promise<ReconcileResult> {
    const { config, logger, backoff } = this.#o;
    const error = err instanceof OrderError ? err : storageError(err, 'repairing live/');
    const live = await this.readLive().catch(
      (e: Error): StoredCert => ({ kind: 'unusable', reason: `cannot read live/: ${e.message}` }),
    );
    const ctx = { domain: config.domain, ledgerPath: this.ledgerPath, logger, backoff, now: this.#now };
    return recordFailedAttempt(ctx, await this.readLedger(), error, {
      live,
      what: 'certificate upkeep failed',
    });
  }

  /** Missing → placeholder; unusable → kept in rejected/, last good pair put back (or a placeholder). */
  async #repair(live: StoredCert, install: Install): Promise<StoredCert> {
    const { config, store, logger } = this.#o;
    if (live.kind === 'ok') return live;
    const placeholder = () => createPlaceholder(config.domain, this.#now());
    if (live.kind === 'missing') {
      return install(placeholder(), 'no certificate yet: installed a self-signed placeholder');
    }
    const keptIn = await store.reject(live.reason, this.#now());
    logger.error({ reason: live.reason, keptIn }, `the certificate in live/ is unusable: ${live.reason}`);
    const lastGood = await store.readLastGood(config.domain);
    if (lastGood.kind === 'ok') return install(lastGood.pair, 'put back the last good certificate');
    return install(placeholder(), 'no good certificate to put back: installed a self-signed placeholder');
  }

  async #install(pair: CertPair, message: string, lock: LockHandle | undefined): Promise<StoredCert> {
    if (lock && !(await lock.stillHeld())) {
      // Another certd or issue-cert broke the lock (ours looked stalled) and does this work now.
      throw new OrderError(
        'storage',
        'another process took over the CERT_DIR lock (ours had not been touched in time); not installing',
      );
    }
    try {
      await this.#o.store.install(pair);
    } catch (err) {
      throw storageError(err, 'installing the certificate');
    }
    const live = await this.readLive();
    if (live.kind === 'ok')
      this.#o.logger.info({ domain: this.#o.config.domain, ...serving(live.info) }, message);
    return live;
  }
}
