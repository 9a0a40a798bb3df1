import type { Agent } from 'node:https';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log/logger.ts';
import { loadAccountKey } from './account.ts';
import { orderCertificate, type Polling } from './acme-order.ts';
import { classifyError, OrderError } from './errors.ts';
import { recordFailedAttempt, saveLedger } from './failures.ts';
import { type CertInfo, replacementProblem, serving } from './inspect.ts';
import { orderGate, pullBackFuture, readLedger, recordSuccess } from './ledger.ts';
import type { BackoffPolicy } from './limits.ts';
import { challengePreflight, PreflightPatience } from './preflight.ts';
import type { CertPair, StoredCert } from './store.ts';

export interface RenewContext {
  config: Config['acme'];
  acmeUrl: string;
  agent: Agent;
  accountDir: string;
  ledgerPath: string;
  logger: Logger;
  backoff: BackoffPolicy;
  now: () => Date;
  install: (pair: CertPair, message: string) => Promise<StoredCert>;
  /** Port of the HTTP-01 preflight (80, as the CA uses; tests use nginx's test port). */
  preflightPort?: number;
  /** How long an order polls the CA (tests shorten it). */
  polling?: Polling;
}

const PREFLIGHT_RETRY_MS = 10_000;
// One per process: how long the challenge path has been failing the preflight.
const PATIENCE = new PreflightPatience();

export interface ReconcileResult {
  /** What live/ holds afterwards. */
  live: StoredCert;
  order: 'not-needed' | 'issued' | 'waiting' | 'failed';
  /** waiting, failed: the earliest next attempt, and why not sooner. */
  until?: Date;
  why?: string;
  error?: OrderError;
}

/**
 * Replaces the due certificate `current` through one ACME order, if the order record allows
 * one now. The new pair is checked before it is installed; whatever fails, the preflight's
 * writing to the webroot included, is recorded and logged with the certificate that stays.
 * `fromOtherDirectory`: `current` came from another ACME directory, so any valid certificate
 * from this one is better, even one that expires sooner.
 */
export async function renewWithAcme(
  ctx: RenewContext,
  live: StoredCert & { kind: 'ok' },
  backoffFrom: Date | undefined,
  fromOtherDirectory = false,
): Promise<ReconcileResult> {
  const { config, logger } = ctx;
  const current: CertInfo = live.info;
  const now = ctx.now();
  let ledger = await readLedger(ctx.ledgerPath);
  const pulledBack = pullBackFuture(ledger, now, ctx.backoff.maxMs);
  if (pulledBack) {
    logger.warn(
      { path: ctx.ledgerPath },
      'the order record had times in the future (the clock ran ahead); capped them',
    );
    ledger = pulledBack;
    await saveLedger(ctx, ledger);
  }
  const gate = orderGate(ledger, { domain: config.domain, directoryUrl: ctx.acmeUrl, now, backoffFrom });
  if (gate) return { live, order: 'waiting', ...gate };
  let issued = false;
  try {
    const preflight = await challengePreflight(config.domain, config.webroot, ctx.preflightPort);
    if (PATIENCE.holdBack(preflight, now.getTime()) && preflight.served === false) {
      // Not a CA failure: nothing is recorded, the check simply comes back soon.
      return {
        live,
        order: 'waiting',
        until: new Date(now.getTime() + PREFLIGHT_RETRY_MS),
        why: preflight.why,
      };
    }
    if (preflight.served === false)
      logger.warn({ because: preflight.why }, 'challenge preflight still failing; ordering anyway');
    logger.info(
      { domain: config.domain, ca: ctx.acmeUrl, current: serving(current) },
      'ordering a certificate',
    );
    const pair = await orderCertificate({
      directoryUrl: ctx.acmeUrl,
      agent: ctx.agent,
      accountKeyPem: await loadAccountKey(ctx.accountDir, logger),
      email: config.email,
      domain: config.domain,
      webroot: config.webroot,
      logger,
      polling: ctx.polling,
    });
    issued = true;
    const outlast = current.selfSigned || fromOtherDirectory ? undefined : current.notAfter;
    const problem = replacementProblem(pair.chainPem, pair.keyPem, config.domain, outlast, ctx.now());
    if (problem) throw new OrderError('bad_certificate', problem);
    const installed = await ctx.install(pair, 'installed a CA-issued certificate');
    const record =
      installed.kind === 'ok' ? { serial: installed.info.serial, directoryUrl: ctx.acmeUrl } : undefined;
    await saveLedger(ctx, recordSuccess(ledger, config.domain, ctx.now(), record));
    return { live: installed, order: 'issued' };
  } catch (err) {
    const error = classifyError(err, issued ? 'install' : 'order');
    const failure = { ...ctx, domain: config.domain };
    return recordFailedAttempt(failure, ledger, error, { live, issued, what: 'certificate order failed' });
  }
}
