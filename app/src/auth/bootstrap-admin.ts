import type pg from 'pg';
import { issueApiKey } from '../crypto/api-keys.ts';
import { withTransaction } from '../db/pool.ts';

export interface CreateAdminInput {
  username: string;
  email: string;
  rotateKey: boolean;
}

export type CreateAdminResult =
  | { outcome: 'created'; apiKey: string }
  | { outcome: 'exists'; isAdmin: boolean }
  | { outcome: 'rotated'; apiKey: string; revokedKeys: number; reenabled: boolean; promoted: boolean };

/**
 * Creates an admin user with one API key, or — when the username is taken — leaves it alone,
 * unless `rotateKey` asks for a new key, which revokes the user's earlier ones in the same
 * transaction and makes the user an enabled admin again if it was disabled or demoted. Safe to
 * run twice at once: the unique username decides who creates.
 */
export async function createAdmin(pool: pg.Pool, input: CreateAdminInput): Promise<CreateAdminResult> {
  return withTransaction(pool, async (client) => {
    const inserted = await client.query<{ id: number }>(
      `INSERT INTO users (username, email, is_admin) VALUES ($1, $2, true)
       ON CONFLICT (username) DO NOTHING RETURNING id`,
      [input.username, input.email],
    );
    const newId = inserted.rows[0]?.id;
    if (newId !== undefined) return { outcome: 'created', apiKey: await insertKey(client, newId) };

    const existing = await client.query<{ id: number; is_admin: boolean; disabled: boolean }>(
      'SELECT id, is_admin, disabled FROM users WHERE username = $1 FOR UPDATE',
      [input.username],
    );
    const user = existing.rows[0];
    if (!user) throw new Error('user vanished while being read');
    if (!input.rotateKey) return { outcome: 'exists', isAdmin: user.is_admin };
    // This is the way back in when no admin key works: a disabled user's new key would get 401, a
    // demoted one's 403 on the admin API (another admin may have demoted it, then been lost too).
    if (user.disabled || !user.is_admin) {
      await client.query(
        'UPDATE users SET disabled = false, is_admin = true, updated_at = now() WHERE id = $1',
        [user.id],
      );
    }
    const revoked = await client.query(
      `UPDATE api_keys SET status = 'revoked', revoked_at = now(), updated_at = now()
       WHERE user_id = $1 AND status = 'active'`,
      [user.id],
    );
    return {
      outcome: 'rotated',
      apiKey: await insertKey(client, user.id),
      revokedKeys: revoked.rowCount ?? 0,
      reenabled: user.disabled,
      promoted: !user.is_admin,
    };
  });
}

async function insertKey(client: pg.PoolClient, userId: number): Promise<string> {
  const issued = issueApiKey();
  await client.query(
    `INSERT INTO api_keys (user_id, name, key_hash, display_prefix) VALUES ($1, 'create-admin', $2, $3)`,
    [userId, issued.hash, issued.displayPrefix],
  );
  return issued.key;
}
