import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { libpqEnv, type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { registerTempDir, type ServerProcess, spawnServer, waitFor } from '../helpers/processes.ts';

// The backup container's command, `gpt-proxy-backup loop`, for real: with a schedule that fires
// every minute it writes a backup at the next minute boundary (so this waits up to a minute), and
// it stops promptly on SIGTERM, as `docker stop` sends it.

const SCRIPT = fileURLToPath(new URL('../../scripts/backup.sh', import.meta.url));

describe('the scheduled backup loop', { timeout: 110_000 }, () => {
  let pg: PostgresServer;
  let loop: ServerProcess | undefined;
  let dir: string;

  before(async () => {
    pg = await startPostgres();
    const { name } = await pg.createDatabase();
    const c = await pg.connect(name);
    await c.query("CREATE TABLE t AS SELECT 'row' AS v");
    await c.end();
    dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-backup-loop-'));
    registerTempDir(dir);
    loop = await spawnServer('sh', [SCRIPT, 'loop'], {
      name: 'backup-loop',
      env: {
        ...libpqEnv(pg, name),
        BACKUP_DIR: dir,
        BACKUP_SCHEDULE: '* * * * *',
        BACKUP_RETENTION: '2',
        BACKUP_FAILED_MARK: join(dir, '..', `${name}.failed`),
      },
    });
  });
  after(async () => {
    await loop?.stop('SIGKILL');
    await pg?.destroy();
  });

  it('backs up when the schedule fires, and stops on SIGTERM', async () => {
    await waitFor(() => (loop?.output() ?? '').includes("scheduled: '* * * * *' (UTC), keeping 2"), {
      what: 'the loop to start',
    });
    const name = await waitFor(() => readdirSync(dir).find((f) => /^gpt-proxy-\d{8}T\d{6}Z\.dump$/.test(f)), {
      timeoutMs: 75_000,
      intervalMs: 500,
      what: 'the first scheduled backup',
    });
    assert.match(name, /^gpt-proxy-\d{8}T\d{4}0[0-9]Z\.dump$/, 'written in the first seconds of a minute');
    await waitFor(() => (loop?.output() ?? '').includes(`backup written: ${name}`), { what: 'the log line' });
    const exit = await loop?.stop('SIGTERM', 5_000);
    assert.deepEqual(exit, { code: 0, signal: null }, 'stopped by itself, not killed');
    assert.match(loop?.output() ?? '', /gpt-proxy-backup: stopping\n$/);
  });
});

describe('the backup loop after a failed backup', { timeout: 60_000 }, () => {
  it('tries again as soon as it starts, and clears the failed mark when that succeeds', async () => {
    const pg = await startPostgres();
    let loop: ServerProcess | undefined;
    try {
      const { name } = await pg.createDatabase();
      const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-backup-retry-'));
      registerTempDir(dir);
      const mark = join(dir, '.last-backup-failed');
      writeFileSync(mark, '2026-01-01T00:00:00Z\n'); // left by a failed backup in the old container
      loop = await spawnServer('sh', [SCRIPT, 'loop'], {
        name: 'backup-loop-retry',
        env: {
          ...libpqEnv(pg, name),
          BACKUP_DIR: dir,
          BACKUP_SCHEDULE: '0 0 1 1 *', // not due for months: only the retry can write a backup
        },
      });
      const current = loop;
      await waitFor(() => !existsSync(mark) && current.output().includes('backup written: gpt-proxy-'), {
        timeoutMs: 20_000,
        what: 'the retried backup',
      });
      assert.match(current.output(), /the last backup failed at 2026-01-01T00:00:00Z: trying again now/);
    } finally {
      await loop?.stop('SIGKILL');
      await pg.destroy();
    }
  });
});
