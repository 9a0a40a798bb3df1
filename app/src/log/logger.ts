import pino from 'pino';
import type { Config } from '../config/index.ts';
import { describeError, redact } from './redact.ts';

export type Logger = pino.Logger;

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
      timestamp: pino.stdTimeFunctions.isoTime,
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
 * Standard output written asynchronously: a line is queued and written in the background, and lines
 * logged while a write is in flight go out together in the next one (one system call under load
 * instead of one per request). pino flushes what is queued synchronously when the process exits,
 * including on a fatal error; only a kill -9 or power loss can lose the last lines.
 */
export function asyncStdout(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false });
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
