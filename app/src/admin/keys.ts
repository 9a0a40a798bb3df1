import type pg from 'pg';
import { issueApiKey } from '../crypto/api-keys.ts';
import { ApiError } from '../errors.ts';
import { createKeyBody, listKeysQuery, UPDATABLE_KEY_COLUMNS, updateKeyBody } from './keys-schema.ts';
import { type AdminRoute, audit, defineRoute } from './route.ts';
import { notFound, page } from './validation.ts';

// Never the hash: a key is shown by its non-secret display prefix.
const KEY_SELECT = `SELECT k.id, k.name, k.display_prefix AS prefix, k.user_id, u.username, k.status,
    k.rpm, k.tpm, k.allowed_models AS models, k.expires_at, k.last_used_at, k.revoked_at,
    k.created_at, k.updated_at
  FROM api_keys k JOIN users u ON u.id = k.user_id`;

async function keyById(db: pg.Pool, id: number): Promise<Record<string, unknown>> {
  const { rows } = await db.query(`${KEY_SELECT} WHERE k.id = $1`, [id]);
  if (!rows[0]) throw notFound('API key', id);
  return rows[0];
}

/**
 * Proxy API keys: list, issue (the key is in this one answer and nowhere else), change limits,
 * revoke. Every change drops this instance's auth cache at once; other replicas see it when
 * their cache entry ages out (under 5 s).
 */
export const keyRoutes: AdminRoute[] = [
  defineRoute({
    method: 'GET',
    path: '/keys',
    summary: 'List API keys, oldest first',
    query: listKeysQuery,
    async handle({ query, deps }) {
      const { rows } = await deps.db.query(
        `${KEY_SELECT}
         WHERE k.id > $1 AND ($2::int IS NULL OR k.user_id = $2) AND ($3::text IS NULL OR k.status = $3)
         ORDER BY k.id LIMIT $4`,
        [query.after ?? 0, query.user_id ?? null, query.status ?? null, query.limit + 1],
      );
      return page(rows, query.limit);
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/keys',
    summary: 'Issue an API key; the key is returned once',
    body: createKeyBody,
    status: 201,
    async handle(input) {
      const { body, deps } = input;
      const issued = issueApiKey();
      const { rows } = await deps.db.query<{ id: number }>(
        `INSERT INTO api_keys (user_id, name, key_hash, display_prefix, rpm, tpm, allowed_models, expires_at)
         SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM users WHERE id = $1 AND NOT disabled
         RETURNING id`,
        [
          body.user_id,
          body.name,
          issued.hash,
          issued.displayPrefix,
          body.rpm,
          body.tpm,
          body.models,
          body.expires_at,
        ],
      );
      const id = rows[0]?.id;
      if (id === undefined) {
        const user = await deps.db.query('SELECT 1 FROM users WHERE id = $1', [body.user_id]);
        const why = user.rowCount ? 'is disabled; enable it first' : 'does not exist';
        throw new ApiError('invalid_request', `User ${body.user_id} ${why}.`, { param: 'user_id' });
      }
      audit(input, 'key.issue', id);
      return { ...(await keyById(deps.db, id)), key: issued.key };
    },
  }),
  defineRoute({
    method: 'PATCH',
    path: '/keys/:id',
    summary: "Change a key's name, limits, expiry or models",
    body: updateKeyBody,
    async handle(input) {
      const { id, body, caller, deps } = input;
      // An expiry is a revocation that waits: refused on the caller's own key as DELETE is.
      // Clearing one (null) locks nobody out.
      if (id === caller.id && body.expires_at) {
        throw new ApiError(
          'invalid_request',
          'You cannot set an expiry on the key you are using; change it with another admin key.',
          { param: 'expires_at' },
        );
      }
      const sets: string[] = [];
      const values: unknown[] = [id];
      for (const [field, column] of Object.entries(UPDATABLE_KEY_COLUMNS)) {
        if (!(field in body)) continue;
        values.push(body[field as keyof typeof body]);
        sets.push(`${column} = $${values.length}`);
      }
      const { rowCount } = await deps.db.query(
        `UPDATE api_keys SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`,
        values,
      );
      if (!rowCount) throw notFound('API key', id);
      deps.authenticator.invalidate();
      audit(input, 'key.update', id, body);
      return keyById(deps.db, id);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/keys/:id',
    summary: 'Revoke a key (the row stays, for the usage history)',
    async handle(input) {
      const { id, caller, deps } = input;
      if (id === caller.id) {
        throw new ApiError(
          'invalid_request',
          'You cannot revoke the key you are using; revoke it with another admin key.',
          { param: 'id' },
        );
      }
      const { rowCount } = await deps.db.query(
        `UPDATE api_keys SET status = 'revoked', revoked_at = coalesce(revoked_at, now()), updated_at = now()
         WHERE id = $1`,
        [id],
      );
      if (!rowCount) throw notFound('API key', id);
      deps.authenticator.invalidate();
      audit(input, 'key.revoke', id);
      return keyById(deps.db, id);
    },
  }),
];
