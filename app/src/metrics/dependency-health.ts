import { Gauge, type Registry } from 'prom-client';

/** A check that resolves when the dependency answers (`SELECT 1`, `PING`). */
export type DependencyCheck = () => Promise<unknown>;

export const DEPENDENCY_UP = 'gpt_proxy_dependency_up';

/** How long `/health` and the dependency gauge wait for a check's answer. */
export const DEPENDENCY_CHECK_TIMEOUT_MS = 2_000;

async function answers(check: DependencyCheck, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([check(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `gpt_proxy_dependency_up{service}`: 1 when the dependency answered its check within `timeoutMs`,
 * else 0. `GET /health` tells a person; alert rules need a metric, so the same checks run here,
 * at scrape time: the value is never older than the scrape, and no timer has to be stopped.
 */
export function trackDependencies(
  registry: Registry,
  checks: Record<string, DependencyCheck>,
  timeoutMs = DEPENDENCY_CHECK_TIMEOUT_MS,
): Gauge<'service'> {
  return new Gauge({
    name: DEPENDENCY_UP,
    help: '1 when this instance reached the dependency (database: SELECT 1, redis: PING) at scrape time, else 0.',
    labelNames: ['service'] as const,
    registers: [registry],
    async collect() {
      const entries = Object.entries(checks);
      const results = await Promise.all(entries.map(([, check]) => answers(check, timeoutMs)));
      entries.forEach(([service], i) => {
        this.set({ service }, results[i] ? 1 : 0);
      });
    },
  });
}
