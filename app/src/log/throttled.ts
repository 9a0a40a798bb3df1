/** Logs at most one line per `ms` for a repeating fault (Redis down must not flood the log). */
export function throttled(fn: (err: unknown) => void, ms: number): (err: unknown) => void {
  let last = 0;
  return (err) => {
    if (Date.now() - last < ms) return;
    last = Date.now();
    fn(err);
  };
}

/**
 * As `throttled`, with an allowance of its own for each key: one fault repeating must not hide
 * another (two upstream keys each missing a deployment are both logged). For keys from a bounded
 * set only (configuration, not clients): each is remembered.
 */
export function throttledPerKey<A extends unknown[]>(
  keyOf: (...args: A) => string,
  fn: (...args: A) => void,
  ms: number,
): (...args: A) => void {
  const last = new Map<string, number>();
  return (...args) => {
    const key = keyOf(...args);
    const now = Date.now();
    const previous = last.get(key);
    if (previous !== undefined && now - previous < ms) return;
    last.set(key, now);
    fn(...args);
  };
}
