import type pg from 'pg';
import { z } from 'zod';
import { withTransaction } from '../db/pool.ts';
import { ApiError } from '../errors.ts';
import { type AdminRoute, audit, defineRoute, isUniqueViolation } from './route.ts';
import { idParam, notFound, page, pageQuery } from './validation.ts';

const username = z
  .string({ error: "'username' is required and must be a string" })
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    "'username' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );
const email = z
  .string({ error: "'email' is required and must be a string" })
  .max(254, "'email' must be at most 254 characters")
  .regex(/^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u, "'email' must be an email address");
const flag = (name: string) => z.boolean({ error: `'${name}' must be true or false` });

export const createUserBody = z.strictObject({
  username,
  email,
  is_admin: flag('is_admin').default(false),
});

export const updateUserBody = z
  .strictObject({ disabled: flag('disabled'), is_admin: flag('is_admin'), email })
  .partial()
  .refine((b) => Object.keys(b).length > 0, "Give at least one of 'disabled', 'is_admin', 'email'.");

export const listUsersQuery = z.strictObject({ ...pageQuery, after: idParam('after').optional() });

// active_keys: the keys a client can still use. An expired key keeps status 'active' (nothing
// rewrites it), so the expiry is checked here as the key check does (expired once expires_at <= now).
const USER_COLUMNS = `u.id, u.username, u.email, u.is_admin, u.disabled, u.created_at, u.updated_at,
  (SELECT count(*)::int FROM api_keys k WHERE k.user_id = u.id AND k.status = 'active'
     AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys`;

/**
 * Refuses a change that takes user `id`'s admin rights (disabling or demoting it) when no other
 * enabled admin would remain. The enabled admins are locked first, in id order so that two such
 * changes cannot deadlock: two admins taking each other's rights at once are then applied one
 * after the other, and the second sees the first's change.
 */
async function keepAnAdmin(client: pg.PoolClient, id: number, param: string): Promise<void> {
  const { rows } = await client.query<{ id: number }>(
    'SELECT id FROM users WHERE is_admin AND NOT disabled ORDER BY id FOR UPDATE',
  );
  if (rows.length === 1 && rows[0]?.id === id) {
    throw new ApiError(
      'invalid_request',
      `User ${id} is the only enabled admin left; this change would leave no enabled admin.`,
      { param },
    );
  }
}

/** Users: list, create, and enable/disable (or change admin flag and email). */
export const userRoutes: AdminRoute[] = [
  defineRoute({
    method: 'GET',
    path: '/users',
    summary: 'List users, oldest first',
    query: listUsersQuery,
    async handle({ query, deps }) {
      const { rows } = await deps.db.query(
        `SELECT ${USER_COLUMNS} FROM users u WHERE u.id > $1 ORDER BY u.id LIMIT $2`,
        [query.after ?? 0, query.limit + 1],
      );
      return page(rows, query.limit);
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/users',
    summary: 'Create a user',
    body: createUserBody,
    status: 201,
    async handle(input) {
      const { body, deps } = input;
      try {
        const { rows } = await deps.db.query(
          `WITH u AS (INSERT INTO users (username, email, is_admin) VALUES ($1, $2, $3) RETURNING *)
           SELECT ${USER_COLUMNS} FROM u`,
          [body.username, body.email, body.is_admin],
        );
        audit(input, 'user.create', rows[0]?.id);
        return rows[0];
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        throw new ApiError('invalid_request', `A user named '${body.username}' already exists.`, {
          param: 'username',
        });
      }
    },
  }),
  defineRoute({
    method: 'PATCH',
    path: '/users/:id',
    summary: 'Disable or enable a user, or change its admin flag or email',
    body: updateUserBody,
    async handle(input) {
      const { id, body, caller, deps } = input;
      const takesAdmin = body.disabled === true || body.is_admin === false;
      const param = body.disabled === true ? 'disabled' : 'is_admin';
      // An admin locking themselves out is almost always a slip; another admin can do it.
      if (id === caller.userId && takesAdmin) {
        throw new ApiError(
          'invalid_request',
          'You cannot disable your own user or remove its admin rights; use another admin key.',
          { param },
        );
      }
      const rows = await withTransaction(deps.db, async (client) => {
        if (takesAdmin) await keepAnAdmin(client, id, param);
        const updated = await client.query(
          `WITH u AS (
             UPDATE users SET disabled = coalesce($2, disabled), is_admin = coalesce($3, is_admin),
               email = coalesce($4, email), updated_at = now()
             WHERE id = $1 RETURNING *)
           SELECT ${USER_COLUMNS} FROM u`,
          [id, body.disabled ?? null, body.is_admin ?? null, body.email ?? null],
        );
        return updated.rows;
      });
      if (!rows[0]) throw notFound('user', id);
      deps.authenticator.invalidate();
      audit(input, 'user.update', id, body);
      return rows[0];
    },
  }),
];
