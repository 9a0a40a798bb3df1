import type pg from 'pg';
import type { Config } from '../config/index.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { AzureDeployment } from './deployments.ts';
import { holdsKey, insertSealedKey, unknownSealingKey } from './key-rows.ts';

/** An upstream key as the environment lists it. */
export interface DesiredKey {
  provider: 'openai' | 'azure';
  key: string;
  endpoint: string | null;
  deployments: AzureDeployment[] | null;
}

export interface SyncResult {
  added: number;
  reactivated: number;
  retired: number;
  unchanged: number;
}

interface Row {
  id: number;
  provider: string;
  encryption_key_id: string;
  fingerprint: Buffer;
  source: 'env' | 'admin';
  status: string;
}

// Serialises concurrent syncs (two deploy hooks at once) without blocking the proxy.
export const SYNC_LOCK_ID = 7_422_113_002;

/** The keys UPSTREAM_TYPE says the environment seeds, without duplicates. */
export function desiredKeysFromConfig(upstream: Config['upstream']): DesiredKey[] {
  const keys =
    upstream.type === 'openai'
      ? upstream.openai.apiKeys.map((key) => ({
          provider: 'openai' as const,
          key,
          endpoint: null,
          deployments: null,
        }))
      : upstream.azure.apiKeys.map((key) => ({
          provider: 'azure' as const,
          key,
          endpoint: upstream.azure.endpoint ?? null,
          deployments: [...upstream.azure.deployments],
        }));
  return keys.filter((k, i) => keys.findIndex((o) => o.key === k.key) === i);
}

/**
 * Makes the env-managed rows of `upstream_keys` match `desired`: new keys are added, env keys no
 * longer listed are retired, retired keys listed again become active, the rest keep their status
 * (Azure endpoint and deployments follow the environment). Keys added through the admin API are
 * never touched. An empty list changes nothing. Keys are matched by fingerprint, so nothing is
 * decrypted; a row sealed with a key this box does not hold stops the sync rather than being
 * mistaken for a different key.
 */
export async function syncEnvKeys(
  client: pg.ClientBase,
  box: SecretBox,
  desired: DesiredKey[],
): Promise<SyncResult> {
  const result: SyncResult = { added: 0, reactivated: 0, retired: 0, unchanged: 0 };
  if (desired.length === 0) return result;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SYNC_LOCK_ID]);
    const { rows } = await client.query<Row>(
      'SELECT id, provider, encryption_key_id, fingerprint, source, status FROM upstream_keys FOR UPDATE',
    );
    const unknown = unknownSealingKey(box, rows);
    if (unknown) throw new Error(`${unknown}; add that key to ENCRYPTION_KEY_PREVIOUS and run again`);
    const matched = new Set<number>();
    for (const want of desired) {
      const row = rows.find((r) => r.provider === want.provider && holdsKey(box, r, want.key));
      if (!row) {
        await insertSealedKey(client, box, { ...want, source: 'env' });
        result.added++;
        continue;
      }
      matched.add(row.id);
      if (row.source === 'admin') {
        result.unchanged++;
        continue;
      }
      const reactivate = row.status === 'retired';
      await client.query(
        `UPDATE upstream_keys SET endpoint = $2, deployments = $3, updated_at = now(),
           status = CASE WHEN $4 THEN 'active' ELSE status END,
           failure_count = CASE WHEN $4 THEN 0 ELSE failure_count END,
           last_error = CASE WHEN $4 THEN NULL ELSE last_error END,
           cooldown_until = CASE WHEN $4 THEN NULL ELSE cooldown_until END
         WHERE id = $1`,
        [
          row.id,
          want.endpoint,
          want.deployments === null ? null : JSON.stringify(want.deployments),
          reactivate,
        ],
      );
      if (reactivate) result.reactivated++;
      else result.unchanged++;
    }
    const toRetire = rows.filter((r) => r.source === 'env' && r.status !== 'retired' && !matched.has(r.id));
    if (toRetire.length > 0) {
      await client.query(
        `UPDATE upstream_keys SET status = 'retired', cooldown_until = NULL, updated_at = now() WHERE id = ANY($1)`,
        [toRetire.map((r) => r.id)],
      );
    }
    result.retired = toRetire.length;
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
