import { z } from 'zod';
import { idParam, MAX_INT, pageQuery } from './validation.ts';

// Request shapes of /admin/v1/keys. `null` means "the default" for limits (RATE_LIMIT_RPM /
// RATE_LIMIT_TPM apply), "never" for expires_at and "every model" for models; `0` is unlimited.

const MODEL = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\*?$/;

const limit = (name: string) =>
  z
    .number({ error: `'${name}' must be a whole number (0 = unlimited) or null for the default` })
    .int(`'${name}' must be a whole number`)
    .min(0, `'${name}' must not be negative`)
    .max(MAX_INT, `'${name}' must be at most ${MAX_INT}`)
    .nullable();

const name = z
  .string({ error: "'name' must be a string" })
  .max(100, "'name' must be at most 100 characters")
  .regex(/^[^\p{Cc}]*$/u, "'name' must not contain control characters");

const expiresAt = z.iso
  .datetime({
    offset: true,
    error: "'expires_at' must be an ISO 8601 date-time with offset (2025-12-31T23:59:59Z) or null",
  })
  .transform((s) => new Date(s))
  .refine((d) => d.getTime() > Date.now(), "'expires_at' must be in the future; to end a key now, revoke it")
  .nullable();

const models = z
  .array(
    z
      .string({ error: "'models' items must be strings" })
      .regex(MODEL, "'models' items must be model names, optionally ending in '*' to match a prefix"),
    { error: "'models' must be an array of model names, or null for every model" },
  )
  .min(1, "'models' must not be empty; use null to allow every model")
  .max(100, "'models' must list at most 100 entries")
  .nullable();

export const createKeyBody = z.strictObject({
  user_id: z
    .number({ error: "'user_id' is required and must be a user's id" })
    .int("'user_id' must be a user's id")
    .min(1, "'user_id' must be a user's id")
    .max(MAX_INT, "'user_id' must be a user's id"),
  name: name.default(''),
  rpm: limit('rpm').default(null),
  tpm: limit('tpm').default(null),
  expires_at: expiresAt.default(null),
  models: models.default(null),
});

export const updateKeyBody = z
  .strictObject({ name, rpm: limit('rpm'), tpm: limit('tpm'), expires_at: expiresAt, models })
  .partial()
  .refine(
    (b) => Object.keys(b).length > 0,
    "Give at least one of 'name', 'rpm', 'tpm', 'expires_at', 'models'.",
  );

export const listKeysQuery = z.strictObject({
  ...pageQuery,
  after: idParam('after').optional(),
  user_id: idParam('user_id').optional(),
  status: z.enum(['active', 'revoked'], { error: "'status' must be 'active' or 'revoked'" }).optional(),
});

/** Columns a PATCH may set, body field → column: fixed names, so only values are parameters. */
export const UPDATABLE_KEY_COLUMNS = {
  name: 'name',
  rpm: 'rpm',
  tpm: 'tpm',
  expires_at: 'expires_at',
  models: 'allowed_models',
} as const;
