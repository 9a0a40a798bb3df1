/** Logs at most one line per `ms` for a repeating fault (Redis down must not flood the log). */
export function throttled(fn: (err: unknown) => void, ms: number): (err: unknown) => void {
  let last = 0;
  return (err) => {
    if (Date.now() - last < ms) return;
    last = Date.now();
    fn(err);
  };
}
