/**
 * Formats a duration the way OpenAI writes `x-ratelimit-reset-*`: `120ms` under a second, then
 * whole seconds (`1s`), minutes (`6m0s`) and hours (`1h2m3s`), rounded up.
 */
export function formatReset(ms: number): string {
  // Rounded up before the unit is chosen: 999.4 ms is a whole second, not "1000ms".
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1000) return `${whole}ms`;
  const total = Math.ceil(whole / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
