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

const PART = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/y;
const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 1e-3,
  µs: 1e-3,
  ns: 1e-6,
};

/**
 * Reads a duration as OpenAI writes `x-ratelimit-reset-*` (Go's duration format: `120ms`, `1s`,
 * `6m0s`, `2m52.8s`, `33.023s`), in milliseconds; undefined for anything else (a bare number
 * says no unit, and is not guessed at).
 */
export function parseReset(text: string): number | undefined {
  const value = text.trim();
  if (value === '') return undefined;
  let ms = 0;
  for (let at = 0; at < value.length; at = PART.lastIndex) {
    PART.lastIndex = at;
    const part = PART.exec(value);
    if (part === null) return undefined;
    ms += Number(part[1]) * (UNIT_MS[part[2] as string] as number);
  }
  return ms;
}
