import type { Logger } from '../log/logger.ts';
import type { CertInfo } from './inspect.ts';
import type { DirLock } from './lock.ts';
import type { CertManager } from './manager.ts';

export type IssueResult = { ok: true; info: CertInfo } | { ok: false; message: string };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Is what live/ holds what `issue-cert` promises: unexpired and issued by ACME_DIRECTORY (or, in
 * self-signed mode, any)? A certificate from another directory is not: it is to be replaced.
 */
async function inPlace(manager: CertManager): Promise<CertInfo | undefined> {
  const live = await manager.readLive();
  if (live.kind !== 'ok' || live.info.notAfter <= new Date()) return undefined;
  if (!manager.acme) return live.info;
  return live.info.selfSigned || (await manager.fromOtherDirectory(live.info)) ? undefined : live.info;
}

/**
 * `issue-cert`: returns once a certificate is in place, ordering one itself if needed. It waits
 * for an order already under way (the lock), then looks again before ordering, so it never
 * orders twice. As an operator's explicit action it does not wait out certd's backoff from
 * failures before it started, but it honours the CA's Retry-After and limits, and failures
 * recorded while it runs; it makes at most one attempt of its own.
 */
export async function issueCertificate(
  manager: CertManager,
  lock: DirLock,
  logger: Logger,
  timeoutMs: number,
): Promise<IssueResult> {
  const started = new Date();
  const deadline = started.getTime() + timeoutMs;
  const seconds = Math.round(timeoutMs / 1000);
  for (;;) {
    const info = await inPlace(manager);
    if (info) return { ok: true, info };
    if (Date.now() >= deadline) return { ok: false, message: `no certificate in place after ${seconds} s` };
    const handle = await lock.acquire('issue-cert', {
      deadline,
      onWait: (holder) => logger.info({ holder }, 'an order is already under way; waiting for it'),
    });
    if (!handle)
      return { ok: false, message: `timed out after ${seconds} s waiting for the order under way` };
    let result: Awaited<ReturnType<CertManager['reconcile']>>;
    try {
      result = await manager.reconcile({ backoffFrom: started, lock: handle });
    } finally {
      await handle.release();
    }
    if (result.order === 'failed') return { ok: false, message: `${result.why} (${result.error?.hint})` };
    if (result.order !== 'waiting' || !result.until) {
      await sleep(200);
      continue;
    }
    if (result.until.getTime() > deadline) {
      const when = result.until.toISOString();
      return {
        ok: false,
        message: `no order allowed before ${when} (${result.why}), after the ${seconds} s timeout`,
      };
    }
    logger.info({ until: result.until.toISOString(), because: result.why }, 'waiting before ordering');
    // Meanwhile certd may succeed: look at live/ every second.
    while (Date.now() < result.until.getTime() && !(await inPlace(manager))) {
      await sleep(Math.min(1_000, result.until.getTime() - Date.now()));
    }
  }
}
