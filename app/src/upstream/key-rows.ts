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

/**
 * Describes the first of `rows` sealed with an encryption key `box` lacks, or undefined. Such a
 * row can be neither matched nor opened, so a change that must know whether a key is already
 * stored (the env sync, the admin API's add) stops: a copy sealed now would clash with it once
 * ENCRYPTION_KEY_PREVIOUS lets it be read. Names key ids only, never key material.
 */
export function unknownSealingKey(
  box: SecretBox,
  rows: readonly (FingerprintRow & { id: number })[],
): string | undefined {
  const row = rows.find((r) => !box.keyIds.includes(r.encryption_key_id));
  return (
    row &&
    `upstream key ${row.id} was sealed with encryption key id ${row.encryption_key_id}, which is not ` +
      'ENCRYPTION_KEY nor in ENCRYPTION_KEY_PREVIOUS'
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
