import { Counter, Gauge, type Registry } from 'prom-client';
import { FAILURE_REASONS } from './errors.ts';
import type { Ledger } from './ledger.ts';
import type { StoredCert } from './store.ts';

/** certd's metrics, served on its own METRICS_PORT. */
export interface CertMetrics {
  expiry: Gauge;
  selfSigned: Gauge;
  acmeEnabled: Gauge;
  lastSuccess: Gauge;
  lastCheck: Gauge;
  nextAttempt: Gauge;
  consecutiveFailures: Gauge;
  failures: Counter<'reason'>;
  orders: Counter<'result'>;
  checks: Counter;
}

export function createCertMetrics(registry: Registry): CertMetrics {
  const registers = [registry];
  const metrics: CertMetrics = {
    expiry: new Gauge({
      name: 'gpt_proxy_cert_expiry_timestamp_seconds',
      help: 'Expiry (notAfter) of the certificate in live/, Unix time; 0 when there is none',
      registers,
    }),
    selfSigned: new Gauge({
      name: 'gpt_proxy_cert_self_signed',
      help: '1 while live/ holds the self-signed placeholder',
      registers,
    }),
    // With self_signed, tells "no CA certificate yet" from ACME_DIRECTORY=self-signed (an alert).
    acmeEnabled: new Gauge({
      name: 'gpt_proxy_cert_acme_enabled',
      help: '1 when certd gets certificates from an ACME CA; 0 with ACME_DIRECTORY=self-signed',
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'gpt_proxy_cert_last_success_timestamp_seconds',
      help: 'When a CA-issued certificate was last installed, Unix time; 0 if never',
      registers,
    }),
    lastCheck: new Gauge({
      name: 'gpt_proxy_cert_last_check_timestamp_seconds',
      help: 'When certd last checked the certificate, Unix time',
      registers,
    }),
    nextAttempt: new Gauge({
      name: 'gpt_proxy_cert_next_attempt_timestamp_seconds',
      help: 'Earliest next order after failures (backoff, Retry-After, CA limits), Unix time; 0 if none pending',
      registers,
    }),
    consecutiveFailures: new Gauge({
      name: 'gpt_proxy_cert_consecutive_failures',
      help: 'Order failures since the last success',
      registers,
    }),
    failures: new Counter({
      name: 'gpt_proxy_cert_renewal_failures_total',
      help: 'Failed certificate orders, by failure class',
      labelNames: ['reason'],
      registers,
    }),
    orders: new Counter({
      name: 'gpt_proxy_cert_orders_total',
      help: 'Certificate orders placed by this process, by result',
      labelNames: ['result'],
      registers,
    }),
    checks: new Counter({
      name: 'gpt_proxy_cert_checks_total',
      help: 'Certificate checks (timer ticks)',
      registers,
    }),
  };
  for (const reason of FAILURE_REASONS) metrics.failures.inc({ reason }, 0);
  for (const result of ['success', 'failure']) metrics.orders.inc({ result }, 0);
  return metrics;
}

const seconds = (iso: string | undefined): number => (iso ? Date.parse(iso) / 1000 : 0);

/** Sets the gauges from what live/ holds and the persisted order record. */
export function observe(metrics: CertMetrics, live: StoredCert, ledger: Ledger, now: Date): void {
  metrics.lastCheck.set(now.getTime() / 1000);
  metrics.expiry.set(live.kind === 'ok' ? live.info.notAfter.getTime() / 1000 : 0);
  metrics.selfSigned.set(live.kind === 'ok' && live.info.selfSigned ? 1 : 0);
  metrics.lastSuccess.set(seconds(ledger.lastSuccessAt));
  metrics.consecutiveFailures.set(ledger.consecutiveFailures);
  const next = Math.max(seconds(ledger.backoffUntil), seconds(ledger.caRetryAfter));
  metrics.nextAttempt.set(ledger.consecutiveFailures > 0 && next > now.getTime() / 1000 ? next : 0);
}
