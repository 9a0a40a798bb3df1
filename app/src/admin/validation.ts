import type { Context } from 'koa';
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { readJsonBody } from '../http/middleware/json-body.ts';

/** Admin request bodies are small JSON objects; anything bigger is a mistake. */
const ADMIN_BODY_LIMIT = 64 * 1024;
/** Postgres' `integer`, the type of every id and limit column: a larger number fails in SQL (a 500). */
export const MAX_INT = 2_147_483_647;

type Where = 'body' | 'query';

/**
 * Turns the first zod issue into the contract's 400: `invalid_request` with `param` naming the
 * field. An unknown field is reported before anything else, because a misspelt name (`expire_at`)
 * is usually the real cause of the other complaints.
 */
export function invalid(error: z.ZodError, where: Where): ApiError {
  const unknown = error.issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const name = unknown.keys[0] ?? '';
    const what = where === 'body' ? 'field' : 'query parameter';
    return new ApiError('invalid_request', `Unknown ${what} '${name}'.`, { param: name });
  }
  const issue = error.issues[0];
  const param = issue?.path.map(String).join('.') ?? '';
  const message = issue?.message ?? 'Invalid request.';
  return new ApiError(
    'invalid_request',
    param && !message.includes(`'${param.split('.')[0]}'`) ? `'${param}': ${message}` : message,
    param ? { param } : {},
  );
}

/** Parses the query string with `schema`; a parameter given twice is refused rather than guessed at. */
export function parseQuery<S extends z.ZodType>(ctx: Context, schema: S): z.infer<S> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.query)) {
    if (Array.isArray(value)) {
      throw new ApiError('invalid_request', `Query parameter '${name}' is given more than once.`, {
        param: name,
      });
    }
    if (value !== undefined && value !== '') flat[name] = value;
  }
  const result = schema.safeParse(flat);
  if (!result.success) throw invalid(result.error, 'query');
  return result.data;
}

/** Reads the JSON body (content type, size and syntax checked by readJsonBody) and validates it. */
export async function parseBody<S extends z.ZodType>(ctx: Context, schema: S): Promise<z.infer<S>> {
  const { json } = await readJsonBody(ctx, ADMIN_BODY_LIMIT);
  const result = schema.safeParse(json);
  if (!result.success) throw invalid(result.error, 'body');
  return result.data;
}

/** The `{id}` path segment: a positive 32-bit integer, as the tables' identity columns are. */
export function parseId(raw: string | undefined): number {
  const id = /^[1-9][0-9]{0,9}$/.test(raw ?? '') ? Number(raw) : 0;
  if (id < 1 || id > MAX_INT) {
    throw new ApiError('invalid_request', `The id in the path must be a positive integer, not '${raw}'.`, {
      param: 'id',
    });
  }
  return id;
}

/** A 404 for an id that names nothing (the closed code list's 404 for a URL that leads nowhere). */
export function notFound(what: string, id: number | string): ApiError {
  return new ApiError('unknown_url', `No ${what} with id ${id}.`);
}

// ---- query fields: strings in, typed values out ----

/** An integer query parameter within [min, max]. */
export function intParam(name: string, min: number, max: number) {
  return z
    .string()
    .regex(/^[0-9]{1,10}$/, `'${name}' must be an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(
      z.number().min(min, `'${name}' must be at least ${min}`).max(max, `'${name}' must be at most ${max}`),
    );
}

/** An id query parameter (a filter, or the `after` cursor of integer-keyed lists). */
export const idParam = (name: string) => intParam(name, 1, MAX_INT);

/** A point in time: `2025-01-31` (midnight UTC) or an ISO 8601 date-time with an offset. */
export function timeParam(name: string) {
  return z
    .union([z.iso.date(), z.iso.datetime({ offset: true })], {
      error: `'${name}' must be a date (2025-01-31) or an ISO 8601 date-time with offset (2025-01-31T12:00:00Z)`,
    })
    .transform((s) => new Date(s.length === 10 ? `${s}T00:00:00Z` : s));
}

/** `?limit=&after=` as the contract pages every list: 1–100 items, 20 by default. */
export const pageQuery = {
  limit: intParam('limit', 1, 100).default(20),
};

/** A list page in the contract's shape; `rows` were fetched with `limit + 1` to learn whether more exist. */
export function page<T>(rows: T[], limit: number): { data: T[]; has_more: boolean } {
  return { data: rows.slice(0, limit), has_more: rows.length > limit };
}
