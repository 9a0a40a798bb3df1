/**
 * Formats a duration the way OpenAI writes `x-ratelimit-reset-*`: `120ms` under a second, then
 * whole seconds (`1s`), minutes (`6m0s`) and hours (`1h2m3s`), rounded up.
 */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
