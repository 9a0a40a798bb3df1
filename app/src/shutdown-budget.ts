// How long each step of a graceful shutdown may take, in one place: the container's stop timeout
// (infra/app.ts) must exceed their sum, or Docker's SIGKILL cuts the last step short and the usage
// rows still buffered are lost without a word.

/** Open requests and streams get this long to finish after SIGTERM; SHUTDOWN_GRACE_SECONDS may shorten it. */
export const DRAIN_GRACE_MS = 30_000;

/**
 * After the grace, the requests whose connections were cut get this long to finish their
 * bookkeeping (their 499 usage rows): their handlers run only after the sockets are gone.
 */
export const CUT_SETTLE_MS = 2_000;

/** The usage rows' final write, with the other last writes (key state, leases) alongside it. */
export const FINAL_WRITE_MS = 5_000;

/** Ending the Postgres and Redis connections, one of which may still wait on a write given up on. */
export const END_CONNECTIONS_MS = 2_000;

/** Everything after the drain: the final writes, closing the upstream agent, ending the connections. */
export const CLOSE_MS = FINAL_WRITE_MS + END_CONNECTIONS_MS + 1_000;

/** Getting the last log lines out (what is left is written synchronously at exit). */
export const LOG_FLUSH_MS = 1_000;

/** The longest a shutdown can take, from the signal to the exit. */
export function shutdownBoundMs(graceMs: number = DRAIN_GRACE_MS): number {
  return graceMs + CUT_SETTLE_MS + CLOSE_MS + LOG_FLUSH_MS;
}

/** Resolves true once `work` is done, or false when `ms` pass first (`work` goes on, unwaited). */
export async function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
