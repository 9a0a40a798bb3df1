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
