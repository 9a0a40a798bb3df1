import type pg from 'pg';
import type { SecretBox } from '../crypto/secret-box.ts';
// The env sync's lock: neither may run while the other rewrites rows.
import { SYNC_LOCK_ID } from './key-sync.ts';

export interface ReencryptResult {
  reencrypted: number;
  unchanged: number;
}

interface Row {
  id: number;
  key_ciphertext: Buffer;
  key_iv: Buffer;
  key_auth_tag: Buffer;
  encryption_key_id: string;
}

/**
 * Re-seals every upstream key not yet sealed by the current ENCRYPTION_KEY, and recomputes its
 * fingerprint under that key, in one transaction: afterwards the previous keys are no longer
 * needed. Every row is opened before anything is written, so a row no configured key can open
 * stops the rotation with nothing changed.
 */
export async function reencryptUpstreamKeys(client: pg.ClientBase, box: SecretBox): Promise<ReencryptResult> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SYNC_LOCK_ID]);
    const { rows } = await client.query<Row>(
      'SELECT id, key_ciphertext, key_iv, key_auth_tag, encryption_key_id FROM upstream_keys ORDER BY id FOR UPDATE',
    );
    const stale = rows.filter((r) => r.encryption_key_id !== box.currentKeyId);
    const opened = stale.map((r) => ({
      id: r.id,
      secret: box.open({
        ciphertext: r.key_ciphertext,
        iv: r.key_iv,
        authTag: r.key_auth_tag,
        keyId: r.encryption_key_id,
      }),
    }));
    for (const { id, secret } of opened) {
      const sealed = box.seal(secret);
      await client.query(
        `UPDATE upstream_keys SET key_ciphertext = $2, key_iv = $3, key_auth_tag = $4, encryption_key_id = $5,
           fingerprint = $6, updated_at = now() WHERE id = $1`,
        [id, sealed.ciphertext, sealed.iv, sealed.authTag, sealed.keyId, box.fingerprint(secret)],
      );
    }
    await client.query('COMMIT');
    return { reencrypted: opened.length, unchanged: rows.length - opened.length };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
