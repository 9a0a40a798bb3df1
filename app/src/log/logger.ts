import pino from 'pino';
import type { Config } from '../config/index.ts';
import { BlockWriter } from './block-writer.ts';
import { describeError, redact } from './redact.ts';

export type Logger = pino.Logger;

let stampMs = 0;
let stamp = '';
/** pino's ISO timestamp, formatted once per millisecond (a busy proxy logs several lines in one). */
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

/**
 * The process's pino logger: JSON lines on stdout. Header fields that carry credentials are
 * censored by path as a second line of defence; the first is never logging them at all. Error
 * objects go through `errorFields`, which strips secrets pg and ioredis may echo.
 */
export function createLogger(log: Config['log'], name: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name,
      level: log.level,
      base: { service: name },
      timestamp: isoTimeCached,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["api-key"]',
          'req.headers.cookie',
          'headers.authorization',
          'headers["api-key"]',
          'password',
          'apiKey',
          'key',
        ],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/**
 * Standard output in blocks of about 16 KB (some 45 access lines per system call instead of one
 * each), written at least every `flushMs` so a quiet server's lines still show up promptly, and
 * all at the process's exit, including after a fatal error: only a kill -9 or power loss can lose
 * the last lines.
 */
export function bufferedStdout(flushMs = 500): BlockWriter {
  const dest = new BlockWriter(1);
  setInterval(() => dest.flush(), flushMs).unref();
  process.once('exit', () => dest.flushSync());
  return dest;
}

/**
 * Log fields for an error: a secret-free message and type, never the raw object (it may hold a
 * URL or config). Named `error`, not `err`, so pino's own serializer does not add a raw stack.
 */
export function errorFields(
  err: unknown,
  secrets: readonly string[] = [],
): { error: { message: string; type: string } } {
  const type = err instanceof Error ? err.name : typeof err;
  return { error: { message: describeError(err, secrets), type: redact(type) } };
}
