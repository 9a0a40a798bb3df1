import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { libpqEnv, type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { registerTempDir } from '../helpers/processes.ts';
import { runCommand } from '../helpers/scripts.ts';

// The backups volume outlives the backup container and even `pulumi destroy` (retainOnDelete), so
// scripts/backup.sh keeps its state there: (1) after a destroy, a later `pulumi up` adopts the
// volume with a new, empty database - the dumps of the old one must survive the new one's
// retention and never be what --latest picks; (2) a failed backup keeps the container unhealthy
// even after `pulumi up` replaces it (a new container: a new /tmp, the same volume).

const SCRIPT = fileURLToPath(new URL('../../scripts/backup.sh', import.meta.url));
/** The script as run: a copy outside /tmp, which each run hides (the checkout may be under it). */
let script = SCRIPT;

/**
 * Runs backup.sh ARGS as a container would: in its own mount namespace with an empty /tmp, so
 * nothing but BACKUP_DIR carries over from one run to the next.
 */
const inContainer = (args: string[], env: Record<string, string>) =>
  runCommand(
    'unshare',
    ['-rm', 'sh', '-c', 'mount -t tmpfs tmpfs /tmp && exec sh "$@"', 'sh', script, ...args],
    env,
  );

const unshareWorks =
  spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs tmpfs /tmp'], { stdio: 'ignore' }).status === 0;

/** The tables a dump holds, from its table of contents. */
function tables(binDir: string, file: string): string[] {
  const toc = spawnSync(join(binDir, 'pg_restore'), ['--list', file], { encoding: 'utf8' });
  assert.equal(toc.status, 0, toc.stderr);
  return [...toc.stdout.matchAll(/ TABLE public (\w+) /g)].map((m) => m[1] ?? '').sort();
}

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
  const files = () => readdirSync(dir).sort();

  before(async () => {
    // Not under /tmp, which each run hides behind its own.
    dir = mkdtempSync('/var/tmp/gpt-proxy-backups-kept-');
    registerTempDir(dir);
    const scriptDir = mkdtempSync('/var/tmp/gpt-proxy-backup-script-');
    registerTempDir(scriptDir);
    script = join(scriptDir, 'backup.sh');
    copyFileSync(SCRIPT, script);
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
        ...libpqEnv(pg, name),
        BACKUP_DIR: dir,
        BACKUP_RETENTION: '2',
      });
    }
  });
  after(async () => {
    await Promise.all([oldPg?.destroy(), newPg?.destroy()]);
  });

  it('a new database does not prune the old one`s dumps, nor become --latest in their place', async () => {
    const [oldEnv, newEnv] = envs as [Record<string, string>, Record<string, string>];
    const first = await inContainer(['now'], oldEnv);
    assert.equal(first.code, 0, first.stderr);
    const [real] = files().filter((f) => f.startsWith('gpt-proxy-'));
    // Two earlier nights of the old database: copies of its real dump, named older.
    for (const night of ['20200101T030000Z', '20200102T030000Z'])
      copyFileSync(join(dir, real ?? ''), join(dir, `gpt-proxy-${night}.dump`));
    const oldDumps = files().filter((f) => f.startsWith('gpt-proxy-'));
    assert.equal(oldDumps.length, 3);

    // destroy + up: the same volume, a new cluster; more nights than the retention.
    let log = '';
    for (let night = 0; night < 3; night++) {
      await nextSecond();
      const made = await inContainer(['now'], newEnv);
      assert.equal(made.code, 0, made.stderr);
      log += made.stdout;
    }

    const kept = files().filter((f) => f.startsWith('previous-database-'));
    assert.deepEqual(
      kept,
      oldDumps.map((f) => f.replace(/^gpt-proxy-/, 'previous-database-')),
      'every dump of the old database is still there, renamed',
    );
    assert.equal(log.match(/a new database \(cluster \d+, was \d+\)/g)?.length, 1, 'logged, once');
    for (const f of kept) assert.deepEqual(tables(oldPg.binDir, join(dir, f)), ['before_destroy']);
    const scheduled = files().filter((f) => f.startsWith('gpt-proxy-'));
    assert.equal(scheduled.length, 2, 'the new database`s retention');
    for (const f of scheduled) assert.deepEqual(tables(newPg.binDir, join(dir, f)), ['after_destroy']);

    // restore-backup.sh --latest's pick, from `list`:
    const listed = await inContainer(['list'], newEnv);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^previous-database-\d{8}T\d{6}Z\.dump \d+$/m, 'list shows them');
    const latest = spawnSync('awk', ['$1 ~ /^gpt-proxy-[0-9]/ { n = $1 } END { print n }'], {
      input: listed.stdout,
      encoding: 'utf8',
    }).stdout.trim();
    assert.equal(latest, scheduled.at(-1));

    // Back on the same cluster (a plain next night), nothing more is renamed.
    await nextSecond();
    const again = await inContainer(['now'], newEnv);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /a new database/);
    assert.equal(files().filter((f) => f.startsWith('previous-database-')).length, 3);
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
