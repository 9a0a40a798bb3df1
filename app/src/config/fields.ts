import { z } from 'zod';
import { UPSTREAM_KEY_CHARS, UPSTREAM_KEY_CHARS_HINT } from '../upstream/key-format.ts';

// Field builders for environment variables. Every message says what is expected and how to fix
// it, and none includes the value it got: the value may be a secret.

/** A whole number with a default, bounded so that typos ("6O", "-1") are refused. */
export function integer(fallback: number, min: number, max: number) {
  return z
    .string()
    .default(String(fallback))
    .transform((raw, ctx) => {
      const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });
}

export function port(fallback: number) {
  return integer(fallback, 1, 65535);
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export function boolean(fallback: boolean) {
  return z
    .string()
    .default(String(fallback))
    .transform((raw, ctx) => {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    });
}

/**
 * A list separated by commas or line breaks (one per line is natural in a NAME_FILE); blanks and
 * surrounding spaces are dropped.
 */
export function list() {
  return z
    .string()
    .optional()
    .transform((raw) =>
      (raw ?? '')
        .split(/[,\r\n]/)
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
}

/**
 * A list of upstream API keys. A key the upstream could never accept is refused here, by its
 * position: otherwise it would be stored and every request with it would fail as if the network had.
 */
export function apiKeyList() {
  return list().superRefine((keys, ctx) => {
    keys.forEach((key, i) => {
      if (!UPSTREAM_KEY_CHARS.test(key)) {
        ctx.addIssue({
          code: 'custom',
          message: `key ${i + 1} of ${keys.length} must be ${UPSTREAM_KEY_CHARS_HINT}; separate keys with commas or line breaks`,
        });
      }
    });
  });
}

/** An http(s) URL without credentials or a trailing slash, so paths can be appended. */
export function httpUrl(example: string) {
  return z.string().transform((raw, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(raw.trim());
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: `must be an http(s) URL without query, like ${example}` });
      return z.NEVER;
    }
    // The adapters send only the origin, so user:password@ would be silently ignored, and an
    // Azure endpoint is stored and shown by the admin API in plain text.
    if (url.username || url.password) {
      ctx.addIssue({
        code: 'custom',
        message: `must not hold a user name or password (the upstream key is the credential), like ${example}`,
      });
      return z.NEVER;
    }
    return url.href.replace(/\/+$/, '');
  });
}

/** A URL whose scheme is one of `schemes`, used for DATABASE_URL and REDIS_URL. */
export function serviceUrl(schemes: string[], example: string) {
  return z.string().refine(
    (raw) => {
      try {
        return schemes.includes(new URL(raw).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL like ${example}` },
  );
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) {
  return z
    .string()
    .default(fallback)
    .transform((raw, ctx) => {
      const v = raw.trim().toLowerCase();
      if ((values as readonly string[]).includes(v)) return v as T[number];
      ctx.addIssue({ code: 'custom', message: `must be one of: ${values.join(', ')}` });
      return z.NEVER;
    });
}
