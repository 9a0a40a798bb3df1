import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { issueApiKey } from '../../app/src/crypto/api-keys.ts';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { migrate, readMigrations } from '../../app/src/db/migrate.ts';
import type { DesiredKey } from '../../app/src/upstream/key-sync.ts';
import { syncEnvKeys } from '../../app/src/upstream/key-sync.ts';
import { type FakeUpstream, type FakeUpstreamOptions, startFakeUpstream } from '../fake-upstream/index.ts';
import { type PostgresServer, startPostgres } from './postgres.ts';
import { type RedisServer, startRedis } from './redis.ts';

export interface KeyOptions {
  admin?: boolean;
  rpm?: number | null;
  tpm?: number | null;
  models?: string[] | null;
  expiresAt?: Date | null;
  username?: string;
}

/**
 * A complete, real back end for app tests: Postgres (migrated), Redis with a password, and the
 * fake upstream, plus the environment the app needs to use them. Upstream keys are seeded the
 * way init-upstream-keys seeds them.
 */
export interface TestStack {
  pg: PostgresServer;
  redis: RedisServer;
  fake: FakeUpstream;
  database: string;
  encryptionKey: string;
  /** The app's environment (no upstream key lists: the keys are already in the database). */
  env: Record<string, string>;
  db: pg.Pool;
  /** Issues a proxy key for a new user and returns it with its ids. */
  issueKey(options?: KeyOptions): Promise<{ key: string; id: number; userId: number }>;
  seedUpstreamKeys(keys: DesiredKey[]): Promise<void>;
  destroy(): Promise<void>;
}

export interface StackOptions {
  upstreamKeys?: string[];
  fake?: FakeUpstreamOptions;
}

export async function startStack(options: StackOptions = {}): Promise<TestStack> {
  const [pgServer, redis, fake] = await Promise.all([
    startPostgres(),
    startRedis({ password: true }),
    startFakeUpstream(options.fake),
  ]);
  const { name } = await pgServer.createDatabase();
  const db = new pg.Pool({ connectionString: pgServer.url(name), max: 4 });
  // Tests stop Postgres on purpose; an idle client losing its connection must not crash the run.
  db.on('error', () => {});
  const client = await db.connect();
  try {
    await migrate(client, await readMigrations());
  } finally {
    client.release();
  }
  const encryptionKey = randomBytes(32).toString('hex');
  const box = new SecretBox({ current: encryptionKey });
  let users = 0;

  const stack: TestStack = {
    pg: pgServer,
    redis,
    fake,
    database: name,
    encryptionKey,
    env: {
      ...(pgServer.env(name) as unknown as Record<string, string>),
      ...(redis.env() as unknown as Record<string, string>),
      ENCRYPTION_KEY: encryptionKey,
      OPENAI_BASE_URL: fake.openaiBaseUrl,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    },
    db,
    async issueKey(o = {}) {
      const username = o.username ?? `user${++users}-${randomBytes(3).toString('hex')}`;
      const user = await db.query<{ id: number }>(
        'INSERT INTO users (username, email, is_admin) VALUES ($1, $2, $3) RETURNING id',
        [username, `${username}@example.com`, o.admin === true],
      );
      const userId = user.rows[0]?.id as number;
      const issued = issueApiKey();
      const key = await db.query<{ id: number }>(
        `INSERT INTO api_keys (user_id, name, key_hash, display_prefix, rpm, tpm, allowed_models, expires_at)
         VALUES ($1, 'test', $2, $3, $4, $5, $6, $7) RETURNING id`,
        [
          userId,
          issued.hash,
          issued.displayPrefix,
          o.rpm ?? null,
          o.tpm ?? null,
          o.models ?? null,
          o.expiresAt ?? null,
        ],
      );
      return { key: issued.key, id: key.rows[0]?.id as number, userId };
    },
    async seedUpstreamKeys(keys) {
      const c = await db.connect();
      try {
        await syncEnvKeys(c, box, keys);
      } finally {
        c.release();
      }
    },
    async destroy() {
      await db.end().catch(() => {});
      await Promise.allSettled([fake.close(), redis.destroy(), pgServer.destroy()]);
    },
  };
  if (options.upstreamKeys?.length) {
    await stack.seedUpstreamKeys(
      options.upstreamKeys.map((key) => ({ provider: 'openai', key, endpoint: null, deployments: null })),
    );
  }
  return stack;
}
