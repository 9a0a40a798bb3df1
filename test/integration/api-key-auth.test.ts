import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ApiKeyAuthenticator } from '../../app/src/auth/api-key-auth.ts';
import { issueApiKey } from '../../app/src/crypto/api-keys.ts';
import { migrate, readMigrations } from '../../app/src/db/migrate.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';

describe('API key lookups (real Postgres): the cached answer', () => {
  let server: PostgresServer;
  let pool: pg.Pool;
  let queries = 0;
  let clock = 1_800_000_000_000;
  let users = 0;

  before(async () => {
    server = await startPostgres();
    const { url } = await server.createDatabase();
    pool = new pg.Pool({ connectionString: url, max: 2 });
    const client = await pool.connect();
    try {
      await migrate(client, await readMigrations());
    } finally {
      client.release();
    }
    // Counts what the authenticator asks Postgres (the test's own statements go to the client).
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    pool.query = ((...args: unknown[]) => {
      queries++;
      return query(...args);
    }) as typeof pool.query;
  });
  after(async () => {
    await pool?.end();
    await server?.destroy();
  });

  async function newKey(expiresAt: Date | null = null): Promise<{ key: string; id: number }> {
    const issued = issueApiKey();
    const client = await pool.connect();
    try {
      const user = await client.query<{ id: number }>(
        "INSERT INTO users (username, email) VALUES ($1, 'a@example.test') RETURNING id",
        [`user${++users}`],
      );
      const key = await client.query<{ id: number }>(
        'INSERT INTO api_keys (user_id, key_hash, display_prefix, expires_at) VALUES ($1, $2, $3, $4) RETURNING id',
        [user.rows[0]?.id, issued.hash, issued.displayPrefix, expiresAt],
      );
      return { key: issued.key, id: key.rows[0]?.id as number };
    } finally {
      client.release();
    }
  }

  it('answers from the cache without a query, until the TTL has passed', async () => {
    const auth = new ApiKeyAuthenticator({ pool, ttlMs: 4_000, now: () => clock });
    const { key, id } = await newKey();
    assert.equal(auth.authenticateCached(key), undefined, 'never looked up');
    const first = await auth.authenticate(key);
    assert.equal(first.valid && first.key.id, id);
    const before = queries;
    const cached = auth.authenticateCached(key);
    assert.deepEqual(cached, first);
    assert.equal(queries, before, 'no query for a cached key');
    clock += 4_000;
    assert.equal(auth.authenticateCached(key), undefined, 'stale: ask Postgres again');
  });

  it('judges expiry at each call, also on a cached row; refuses a malformed key without a query', async () => {
    const auth = new ApiKeyAuthenticator({ pool, ttlMs: 60_000, now: () => clock });
    const { key } = await newKey(new Date(clock + 1_000));
    assert.equal((await auth.authenticate(key)).valid, true);
    clock += 1_000;
    assert.deepEqual(auth.authenticateCached(key), { valid: false, reason: 'expired' });
    const before = queries;
    assert.deepEqual(auth.authenticateCached('sk-not-ours'), { valid: false, reason: 'unknown' });
    assert.equal(queries, before);
  });
});
