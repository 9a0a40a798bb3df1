import type pg from 'pg';
import { type Config, loadConfigOrExit, type Section } from '../app/src/config/index.ts';
import { describeError, secretsOf } from '../app/src/log/redact.ts';

/** What a provisioning command gets: config loading that also teaches the error printer what to redact. */
export interface CliContext {
  load<S extends Section>(sections: readonly S[]): Pick<Config, S>;
}

/**
 * Runs a command-line program: its errors become one secret-free line on stderr and exit code 1;
 * invalid configuration exits 78 (EX_CONFIG) before anything connects.
 */
export function runCli(name: string, main: (ctx: CliContext) => Promise<number | undefined>): void {
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
      process.stderr.write(`${name}: ${describeError(err, secrets)}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * Connects, retrying for up to `waitSeconds`: deploy hooks start right after the database
 * container, which may still be initialising.
 */
export async function connectWithRetry(pool: pg.Pool, waitSeconds: number): Promise<pg.PoolClient> {
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
