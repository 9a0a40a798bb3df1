import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { registerTempDir } from '../helpers/processes.ts';

// The backups volume outlives the backup container and even `pulumi destroy` (retainOnDelete), so
// scripts/backup.sh keeps its state there: (1) after a destroy, a later `pulumi up` adopts the
// volume with a new, empty database - the dumps of the old one must survive the new one's
// retention and never be what --latest picks; (2) a failed backup keeps the container unhealthy
// even after `pulumi up` replaces it (a new container: a new /tmp, the same volume).

const SCRIPT = fileURLToPath(new URL('../../scripts/backup.sh', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs backup.sh ARGS as a container would: in its own mount namespace with an empty /tmp, so
 * nothing but BACKUP_DIR carries over from one run to the next.
 */
function inContainer(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['-rm', 'sh', '-c', 'mount -t tmpfs tmpfs /tmp && exec sh "$@"', 'sh', SCRIPT, ...args],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const unshareWorks =
  spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs tmpfs /tmp'], { stdio: 'ignore' }).status === 0;

/** The next wall-clock second: backup names have a resolution of one second. */
const nextSecond = () => new Promise((r) => setTimeout(r, 1_050 - (Date.now() % 1_000)));

describe('the backups volume kept across pulumi destroy and container replacement', {
  timeout: 120_000,
  skip: unshareWorks ? false : 'needs unshare -rm (a private /tmp per run)',
}, () => {
  let oldPg: PostgresServer;
  let newPg: PostgresServer;
  const envs: Record<string, string>[] = [];
  let dir: string;

  before(async () => {
    // Not under /tmp, which each run hides behind its own.
    dir = mkdtempSync('/var/tmp/gpt-proxy-backups-kept-');
    registerTempDir(dir);
    [oldPg, newPg] = await Promise.all([startPostgres(), startPostgres()]);
    for (const [pg, table] of [
      [oldPg, 'before_destroy'],
      [newPg, 'after_destroy'],
    ] as const) {
      const { name } = await pg.createDatabase();
      const c = await pg.connect(name);
      await c.query(`CREATE TABLE ${table} AS SELECT 1 AS v`);
      await c.end();
      envs.push({
        PATH: `${pg.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        PGHOST: pg.host,
        PGPORT: String(pg.port),
        PGUSER: pg.user,
        PGPASSWORD: pg.password,
        PGDATABASE: name,
        BACKUP_DIR: dir,
        BACKUP_RETENTION: '2',
      });
    }
  });
  after(async () => {
    await Promise.all([oldPg?.destroy(), newPg?.destroy()]);
  });

  it('a failed backup keeps a replaced container unhealthy, until a good one', async () => {
    const env = envs[1] as Record<string, string>;
    const failed = await inContainer(['now'], { ...env, PGPASSWORD: 'wrong' });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /backup FAILED/);
    // A new container: only the volume is shared with the one whose backup failed.
    const sick = await inContainer(['health'], env);
    assert.equal(sick.code, 1, 'unhealthy after the container is replaced');
    assert.match(sick.stderr, /last backup failed at/);
    assert.doesNotMatch((await inContainer(['list'], env)).stdout, /failed/, 'the mark is no backup');
    await nextSecond();
    assert.equal((await inContainer(['now'], env)).code, 0);
    assert.equal((await inContainer(['health'], env)).code, 0, 'healthy again after a good backup');
  });
});
