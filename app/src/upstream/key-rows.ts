import type pg from 'pg';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { AzureDeployment } from './deployments.ts';
import type { Provider } from './types.ts';

export interface NewUpstreamKey {
  provider: Provider;
  key: string;
  source: 'env' | 'admin';
  endpoint: string | null;
  deployments: readonly AzureDeployment[] | null;
}

/** A stored row's fingerprint and the key that made it. */
export interface FingerprintRow {
  encryption_key_id: string;
  fingerprint: Buffer;
}

/**
 * Whether `row` holds `plaintext`, comparing fingerprints under the row's own encryption key, so
 * rows sealed before a rotation still match. Rows of keys this box lacks never match.
 */
export function holdsKey(box: SecretBox, row: FingerprintRow, plaintext: string): boolean {
  return (
    box.keyIds.includes(row.encryption_key_id) &&
    box.fingerprint(plaintext, row.encryption_key_id).equals(row.fingerprint)
  );
}

/** Seals an upstream key under the current ENCRYPTION_KEY and inserts it; returns the new id. */
export async function insertSealedKey(
  db: pg.ClientBase | pg.Pool,
  box: SecretBox,
  key: NewUpstreamKey,
): Promise<number> {
  const sealed = box.seal(key.key);
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO upstream_keys (provider, key_ciphertext, key_iv, key_auth_tag, encryption_key_id,
       fingerprint, source, endpoint, deployments)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
    [
      key.provider,
      sealed.ciphertext,
      sealed.iv,
      sealed.authTag,
      sealed.keyId,
      box.fingerprint(key.key),
      key.source,
      key.endpoint,
      key.deployments === null ? null : JSON.stringify(key.deployments),
    ],
  );
  return rows[0]?.id as number;
}
