import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { runScript } from '../helpers/scripts.ts';

const exec = promisify(execFile);

describe('data at rest', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.destroy();
  });

  it('a pg_dump of a seeded database holds no plaintext upstream or proxy key', async () => {
    const { name } = await pg.createDatabase();
    const env = {
      ...(pg.env(name) as unknown as Record<string, string>),
      ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    };
    const upstream = [1, 2, 3].map((n) => `sk-proj-canary${n}${randomBytes(16).toString('hex')}`);
    assert.equal((await runScript('init-db', [], env)).code, 0);
    const synced = await runScript('init-upstream-keys', [], { ...env, OPENAI_API_KEYS: upstream.join(',') });
    assert.equal(synced.stdout, 'added=3 reactivated=0 retired=0 unchanged=0\n');
    const admin = JSON.parse(
      (await runScript('create-admin', ['--username', 'admin', '--email', 'a@example.com', '--json'], env))
        .stdout,
    );

    const dump = await exec(
      join(pg.binDir, 'pg_dump'),
      ['--no-owner', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, name],
      {
        env: { ...process.env, PGPASSWORD: pg.password },
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    assert.match(dump.stdout, /COPY public\.upstream_keys/);
    for (const secret of [...upstream, admin.apiKey as string, env.ENCRYPTION_KEY]) {
      // bytea columns are dumped as hex, so look for both spellings.
      assert.ok(!dump.stdout.includes(secret), 'plaintext secret in dump');
      assert.ok(!dump.stdout.includes(Buffer.from(secret).toString('hex')), 'hex-encoded secret in dump');
    }
  });
});
