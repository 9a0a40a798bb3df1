/**
 * Holds or fails one of a real Redis connection's script commands (as the rate limiter defines
 * them), so a test can act while a call is in flight or see what a failed call leaves. The commands
 * themselves still run on the real Redis.
 *
 *   const gcra = gate(connection, 'gpGcra');
 *   gcra.hold();              // the next calls wait ...
 *   gcra.release();           // ... until now, then run
 *   gcra.failNext();          // the next call fails without reaching Redis
 */
import type { Redis } from 'ioredis';

type Command = (...args: unknown[]) => Promise<unknown>;

export interface Gate {
  /** Calls from now on wait for release(). */
  hold(): void;
  /** Runs the held calls (or fails them, without reaching Redis) and lets later ones through. */
  release(opts?: { fail?: boolean }): void;
  /** The next call fails as a refused connection would, without reaching Redis. */
  failNext(): void;
  /** Calls held now. */
  readonly held: number;
}

export function gate(redis: Redis, name: string): Gate {
  const commands = redis as unknown as Record<string, Command>;
  const real = commands[name]?.bind(redis);
  if (real === undefined) throw new Error(`${name} is not defined on this connection`);
  const waiting: Array<(fail: boolean) => void> = [];
  let holding = false;
  let failOnce = false;
  const refused = () => new Error(`${name}: connection refused (test gate)`);
  commands[name] = (...args: unknown[]) => {
    if (failOnce) {
      failOnce = false;
      return Promise.reject(refused());
    }
    if (!holding) return real(...args);
    return new Promise((resolve, reject) => {
      waiting.push((fail) => (fail ? reject(refused()) : real(...args).then(resolve, reject)));
    });
  };
  return {
    hold: () => {
      holding = true;
    },
    release: ({ fail = false } = {}) => {
      holding = false;
      for (const run of waiting.splice(0)) run(fail);
    },
    failNext: () => {
      failOnce = true;
    },
    get held() {
      return waiting.length;
    },
  };
}
