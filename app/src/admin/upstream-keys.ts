import type pg from 'pg';
import { ApiError } from '../errors.ts';
import { errorFields } from '../log/logger.ts';
import { redact } from '../log/redact.ts';
import { holdsKey, insertSealedKey, unknownSealingKey } from '../upstream/key-rows.ts';
import { type AdminDeps, type AdminRoute, audit, defineRoute, isUniqueViolation } from './route.ts';
import {
  createUpstreamKeyBody,
  listUpstreamKeysQuery,
  updateUpstreamKeyBody,
} from './upstream-keys-schema.ts';
import { notFound, page } from './validation.ts';

// Never the ciphertext: a key is recognised by the last 8 hex digits of its HMAC fingerprint.
const UPSTREAM_SELECT = `SELECT id, provider, right(encode(fingerprint, 'hex'), 8) AS fingerprint_suffix, source,
    endpoint, deployments, status, failure_count, last_error, cooldown_until, last_used_at, created_at, updated_at,
    CASE WHEN status = 'disabled' THEN CASE WHEN next_probe_at = 'infinity' THEN 'admin' ELSE 'upstream' END END
      AS disabled_by
  FROM upstream_keys`;

// An admin's "disable" must stick: the prober heals disabled keys whose next_probe_at comes due,
// so an admin-disabled key gets next_probe_at = 'infinity' (never due); enabling clears it. A key
// the upstream refused (disabled_by = 'upstream') keeps being probed and may heal by itself.

interface UpstreamRow {
  last_error: string | null;
  [column: string]: unknown;
}

// last_error holds upstream error text; scrub anything key-shaped before it leaves the server.
const present = (row: UpstreamRow) => ({ ...row, last_error: row.last_error && redact(row.last_error) });

async function upstreamById(db: pg.Pool, id: number) {
  const { rows } = await db.query<UpstreamRow>(`${UPSTREAM_SELECT} WHERE id = $1`, [id]);
  if (!rows[0]) throw notFound('upstream key', id);
  return present(rows[0]);
}

/** Makes this instance's pool see the change now; a failure only delays it to the next refresh. */
async function refreshPool(deps: AdminDeps): Promise<void> {
  await deps.pool?.refresh().catch((err: unknown) => {
    deps.logger.warn(errorFields(err), 'upstream pool refresh after an admin change failed');
  });
}

const duplicate = () =>
  new ApiError('invalid_request', 'This upstream key is already stored (same provider and key).', {
    param: 'key',
  });

/**
 * Upstream keys: list (never the key), add (sealed with ENCRYPTION_KEY, marked `admin` so
 * init-upstream-keys leaves it alone), enable/disable, delete. Env-managed keys are disabled or
 * enabled here but removed through the environment.
 */
export const upstreamKeyRoutes: AdminRoute[] = [
  defineRoute({
    method: 'GET',
    path: '/upstream-keys',
    summary: 'List upstream keys, oldest first (never the key itself)',
    query: listUpstreamKeysQuery,
    async handle({ query, deps }) {
      const { rows } = await deps.db.query<UpstreamRow>(
        `${UPSTREAM_SELECT} WHERE id > $1 AND ($2::text IS NULL OR status = $2) ORDER BY id LIMIT $3`,
        [query.after ?? 0, query.status ?? null, query.limit + 1],
      );
      return page(rows.map(present), query.limit);
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/upstream-keys',
    summary: 'Add an upstream key, encrypted at rest',
    body: createUpstreamKeyBody,
    status: 201,
    async handle(input) {
      const { body, deps } = input;
      const { box, db } = deps;
      // Fingerprints are keyed by the encryption key that sealed each row, so compare per row.
      const existing = await db.query<{ id: number; encryption_key_id: string; fingerprint: Buffer }>(
        'SELECT id, encryption_key_id, fingerprint FROM upstream_keys WHERE provider = $1',
        [body.provider],
      );
      // A row this replica cannot read might be this very key (a restored pre-rotation backup).
      const unknown = unknownSealingKey(box, existing.rows);
      if (unknown) {
        throw new ApiError(
          'invalid_request',
          `Cannot tell whether this key is already stored: ${unknown}. Add that key to ENCRYPTION_KEY_PREVIOUS, restart the app, and try again.`,
        );
      }
      if (existing.rows.some((row) => holdsKey(box, row, body.key))) throw duplicate();
      let id: number;
      try {
        id = await insertSealedKey(db, box, {
          provider: body.provider,
          key: body.key,
          source: 'admin',
          endpoint: body.endpoint,
          deployments: body.deployments,
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw duplicate();
        throw err;
      }
      await refreshPool(deps);
      audit(input, 'upstream_key.add', id);
      return upstreamById(db, id);
    },
  }),
  defineRoute({
    method: 'PATCH',
    path: '/upstream-keys/:id',
    summary: 'Enable (status active, failures cleared) or disable an upstream key',
    body: updateUpstreamKeyBody,
    async handle(input) {
      const { id, body, deps } = input;
      const enable = body.status === 'active';
      const { rowCount } = await deps.db.query(
        `UPDATE upstream_keys SET status = $2, cooldown_until = NULL, updated_at = now(),
           failure_count = CASE WHEN $3 THEN 0 ELSE failure_count END,
           last_error = CASE WHEN $3 THEN NULL ELSE last_error END,
           next_probe_at = CASE WHEN $3 THEN NULL ELSE 'infinity'::timestamptz END
         WHERE id = $1 AND status <> 'retired'`,
        [id, body.status, enable],
      );
      if (!rowCount) {
        await upstreamById(deps.db, id); // 404 when there is no such key
        throw new ApiError(
          'invalid_request',
          `Upstream key ${id} is retired: it left the environment's key list. List it there again and run init-upstream-keys to bring it back.`,
          { param: 'status' },
        );
      }
      await refreshPool(deps);
      audit(input, enable ? 'upstream_key.enable' : 'upstream_key.disable', id);
      return upstreamById(deps.db, id);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/upstream-keys/:id',
    summary: 'Delete an upstream key added through the admin API',
    async handle(input) {
      const { id, deps } = input;
      const { rowCount } = await deps.db.query(
        "DELETE FROM upstream_keys WHERE id = $1 AND source = 'admin'",
        [id],
      );
      if (!rowCount) {
        await upstreamById(deps.db, id);
        throw new ApiError(
          'invalid_request',
          `Upstream key ${id} comes from the environment: remove it from OPENAI_API_KEYS / AZURE_API_KEYS and run init-upstream-keys (which retires it), or disable it here.`,
          { param: 'id' },
        );
      }
      await refreshPool(deps);
      audit(input, 'upstream_key.delete', id);
      return { id, deleted: true };
    },
  }),
];
