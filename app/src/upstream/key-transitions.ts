import { type Outcome, QUOTA_REASON } from './classify.ts';
import type { KeyState } from './key-store.ts';

export interface TransitionPolicy {
  /** Consecutive failures after which a key cools down. */
  failureThreshold: number;
  /** Backoff of the first cooldown after repeated failures; doubles after each further failure. */
  failureBackoffMs: number;
  /** How long a newly disabled key waits for its first probe (out of quota: QUOTA_PROBE_INTERVAL_MS). */
  firstProbeDelayMs: number;
}

/**
 * How often a key disabled for exhausted quota is probed, its first probe included. The probe
 * (`GET /models`) succeeds without quota, so probing such a key every minute would heal it at
 * once and send real requests to it again; the prober schedules its later probes with this too.
 */
export const QUOTA_PROBE_INTERVAL_MS = 30 * 60_000;

/** The state a key moves to, and the statement that records it (`$1` is the key's id). */
export interface Transition {
  next: Pick<KeyState, 'status' | 'failureCount' | 'cooldownUntil'>;
  sql: string;
  params: unknown[];
}

const MAX_BACKOFF_MS = 5 * 60_000;

// Every statement changes only a key in use. A disabled key leaves that state only by a probe
// (when the upstream refused it) or by an admin: an answer to a request that was under way when
// it was disabled, or one reported by a replica that has not re-read the table yet, must not
// bring it back, push its probe forward or back, or undo an admin's 'infinity'.
const IN_USE = "status IN ('active', 'cooling')";

/**
 * What an outcome does to a key: success heals it, a disabling answer disables it (its first
 * probe one probe interval later, one quota interval for exhausted quota), a 429 cools it for
 * Retry-After, and repeated failures cool it with exponential backoff. Nothing changes a
 * disabled key (see IN_USE). Pure: undefined when nothing changes (a healthy key succeeding, a
 * client's mistake, a refusal of the model rather than the key, a disabled key).
 */
export function transition(
  state: KeyState,
  outcome: Outcome,
  policy: TransitionPolicy,
  now: number,
): Transition | undefined {
  if (state.status !== 'active' && state.status !== 'cooling') return undefined;
  switch (outcome.kind) {
    case 'success':
      if (state.status === 'active' && state.failureCount === 0) return undefined;
      return {
        next: { status: 'active', failureCount: 0, cooldownUntil: null },
        sql: `UPDATE upstream_keys SET status = 'active', failure_count = 0, last_error = NULL,
                cooldown_until = NULL, updated_at = now() WHERE id = $1 AND ${IN_USE}`,
        params: [],
      };
    case 'key_disabled':
      return {
        next: { status: 'disabled', failureCount: state.failureCount, cooldownUntil: null },
        sql: `UPDATE upstream_keys SET status = 'disabled', last_error = $2, cooldown_until = NULL,
                next_probe_at = now() + $3 * interval '1 millisecond', updated_at = now()
              WHERE id = $1 AND ${IN_USE}`,
        params: [
          outcome.reason,
          outcome.reason === QUOTA_REASON ? QUOTA_PROBE_INTERVAL_MS : policy.firstProbeDelayMs,
        ],
      };
    case 'key_cooling':
      return cool(new Date(now + outcome.retryAfterMs), outcome.reason, state.failureCount);
    case 'upstream_failure': {
      const failures = state.failureCount + 1;
      const over = failures - policy.failureThreshold;
      if (over < 0) {
        return {
          next: { status: state.status, failureCount: failures, cooldownUntil: state.cooldownUntil },
          sql: `UPDATE upstream_keys SET failure_count = failure_count + 1, last_error = $2, updated_at = now()
                WHERE id = $1 AND ${IN_USE}`,
          params: [outcome.reason],
        };
      }
      const backoff = Math.min(policy.failureBackoffMs * 2 ** over, MAX_BACKOFF_MS);
      return cool(new Date(now + backoff), outcome.reason, failures);
    }
    default:
      return undefined;
  }
}

function cool(until: Date, reason: string, failures: number): Transition {
  return {
    next: { status: 'cooling', failureCount: failures, cooldownUntil: until },
    sql: `UPDATE upstream_keys SET status = 'cooling', cooldown_until = $2, failure_count = $3, last_error = $4,
            updated_at = now() WHERE id = $1 AND ${IN_USE}`,
    params: [until, failures, reason],
  };
}
