import type { OrderError } from './errors.ts';
import { serving } from './inspect.ts';
import { type Ledger, recordFailure, writeLedger } from './ledger.ts';
import type { ReconcileResult, RenewContext } from './renew.ts';
import type { StoredCert } from './store.ts';

/** Writes the order record; a record that cannot be written is logged, not fatal (the CA still limits). */
export async function saveLedger(
  ctx: Pick<RenewContext, 'ledgerPath' | 'logger' | 'now'>,
  ledger: Ledger,
): Promise<void> {
  await writeLedger(ctx.ledgerPath, ledger, ctx.now()).catch((err: Error) => {
    ctx.logger.error(
      { path: ctx.ledgerPath, err: { message: err.message } },
      'cannot record the order attempt',
    );
  });
}

/** What recording a failure needs: where the order record is, the backoff, the clock, the log. */
export type FailureContext = Pick<RenewContext, 'ledgerPath' | 'logger' | 'backoff' | 'now'> & {
  domain: string;
};

/**
 * Records a failure in the order record (counted, with backoff and the CA's Retry-After) and
 * logs it with the operator's hint and what stays in place; certd counts it in its metrics.
 */
export async function recordFailedAttempt(
  ctx: FailureContext,
  ledger: Ledger,
  error: OrderError,
  { live, issued = false, what }: { live: StoredCert; issued?: boolean; what: string },
): Promise<ReconcileResult> {
  const { reason, message, retryAfterMs } = error;
  const now = ctx.now();
  const next = recordFailure(ledger, ctx.domain, { reason, message, retryAfterMs, issued }, ctx.backoff, now);
  await saveLedger(ctx, next);
  const until = new Date(next.backoffUntil ?? now);
  const kept = live.kind === 'ok' ? '; keeping the certificate in place' : '';
  ctx.logger.error(
    {
      domain: ctx.domain,
      reason,
      hint: error.hint,
      failures: next.consecutiveFailures,
      retryAfterSeconds: retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000),
      nextAttemptAt: until.toISOString(),
      keeping: live.kind === 'ok' ? serving(live.info) : undefined,
    },
    `${what} (${reason}): ${message}${kept}`,
  );
  return { live, order: 'failed', until, why: message, error };
}
