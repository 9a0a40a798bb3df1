import { z } from 'zod';
import { bounded, REPORT_TIMEOUT_MS } from '../db/pool.ts';
import { ApiError } from '../errors.ts';
import { type AdminRoute, defineRoute } from './route.ts';
import { idParam, page, pageQuery, timeParam } from './validation.ts';

export const requestsQuery = z.strictObject({
  ...pageQuery,
  after: z.uuid({ error: "'after' must be the id of a request from an earlier page" }).optional(),
  key_id: idParam('key_id').optional(),
  user_id: idParam('user_id').optional(),
  from: timeParam('from').optional(),
  to: timeParam('to').optional(),
});

// Metadata only: usage_logs holds no prompt or completion bodies.
const COLUMNS = `l.id, l.request_id, l.api_key_id AS key_id, k.display_prefix AS key_prefix, l.user_id,
  u.username, l.upstream_key_id, l.route, l.model, l.prompt_tokens, l.completion_tokens, l.total_tokens,
  l.estimated, l.status_code, l.error_code, l.latency_ms, l.stream, l.created_at`;

/**
 * `GET /requests`: the request log, newest first, filtered by key, user and time. `after` is the
 * id of the last row of the previous page; the cursor is compared in SQL as (created_at, id) so
 * rows with the same timestamp are neither skipped nor repeated and no microseconds are lost.
 */
export const requestRoutes: AdminRoute[] = [
  defineRoute({
    method: 'GET',
    path: '/requests',
    summary: 'The request log (no bodies), newest first',
    query: requestsQuery,
    async handle({ query, deps }) {
      if (query.after !== undefined) {
        const cursor = await deps.db.query('SELECT 1 FROM usage_logs WHERE id = $1', [query.after]);
        if (!cursor.rowCount) {
          throw new ApiError('invalid_request', `'after' names no request in the log: ${query.after}.`, {
            param: 'after',
          });
        }
      }
      const { rows } = await deps.db.query(
        bounded(
          `SELECT ${COLUMNS}
           FROM usage_logs l
             LEFT JOIN api_keys k ON k.id = l.api_key_id
             LEFT JOIN users u ON u.id = l.user_id
           WHERE ($1::uuid IS NULL OR (l.created_at, l.id) < (SELECT created_at, id FROM usage_logs WHERE id = $1))
             AND ($2::int IS NULL OR l.api_key_id = $2) AND ($3::int IS NULL OR l.user_id = $3)
             AND ($4::timestamptz IS NULL OR l.created_at >= $4) AND ($5::timestamptz IS NULL OR l.created_at < $5)
           ORDER BY l.created_at DESC, l.id DESC
           LIMIT $6`,
          [
            query.after ?? null,
            query.key_id ?? null,
            query.user_id ?? null,
            query.from ?? null,
            query.to ?? null,
            query.limit + 1,
          ],
          REPORT_TIMEOUT_MS,
        ),
      );
      return page(rows, query.limit);
    },
  }),
];
