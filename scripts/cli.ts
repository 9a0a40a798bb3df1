import type pg from 'pg';
import { type Config, loadConfigOrExit, type Section } from '../app/src/config/index.ts';
import { describeError, secretsOf } from '../app/src/log/redact.ts';

/** What a provisioning command gets: config loading that also teaches the error printer what to redact. */
export interface CliContext {
  load<S extends Section>(sections: readonly S[]): Pick<Config, S>;
}

/** A mistake on the command line: runCli prints it with the program's usage line and exits 2. */
export class UsageError extends Error {}

// node:util parseArgs reports an unknown option or a missing value with these codes.
const isParseArgsError = (err: unknown) =>
  err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_');

/**
 * Runs a command-line program: a command-line mistake is printed with `usage` and exits 2; other
 * errors become one secret-free line on stderr and exit code 1; invalid configuration exits 78
 * (EX_CONFIG) before anything connects.
 */
export function runCli(
  name: string,
  usage: string,
  main: (ctx: CliContext) => Promise<number | undefined>,
): void {
  const secrets: string[] = [];
  const ctx: CliContext = {
    load(sections) {
      const config = loadConfigOrExit(sections);
      secrets.push(...secretsOf(config));
      return config;
    },
  };
  main(ctx).then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err: unknown) => {
      if (err instanceof UsageError || isParseArgsError(err)) {
        process.stderr.write(`${name}: ${(err as Error).message}\nusage: ${usage}\n`);
        process.exitCode = 2;
        return;
      }
      process.stderr.write(`${name}: ${describeError(err, secrets)}\n`);
      process.exitCode = 1;
    },
  );
}

/** `--wait SECONDS`: how long to wait for the database, whole seconds (0: try once). */
export function waitOption(raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError('--wait must be a whole number of seconds, 0 or more');
  return n;
}

/** The longest delay a Node timer keeps (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_SECONDS = Math.floor(2_147_483_647 / 1000);

/** A duration option in seconds: a positive number a timer can hold (up to about 24 days). */
export function secondsOption(raw: string | undefined, name: string): number {
  const n = raw === undefined || raw.trim() === '' ? Number.NaN : Number(raw);
  if (!(n > 0 && n <= MAX_TIMER_SECONDS)) {
    throw new UsageError(`${name} must be a positive number of seconds, at most ${MAX_TIMER_SECONDS}`);
  }
  return n;
}

/**
 * Connects, retrying for up to `waitSeconds`: deploy hooks start right after the database
 * container, which may still be initialising.
 */
export async function connectWithRetry(pool: pg.Pool, waitSeconds: number): Promise<pg.PoolClient> {
  // NaN would make the deadline NaN, which no time is past: it would retry forever.
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new RangeError(`waitSeconds must be a finite number of seconds, 0 or more (got ${waitSeconds})`);
  }
  const deadline = Date.now() + waitSeconds * 1000;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await pool.connect();
    } catch (err) {
      if (Date.now() + delay > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** Writes to stdout and resolves once it is flushed, so `process.exit` cannot cut it off. */
export function print(line: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${line}\n`, () => resolve()));
}
