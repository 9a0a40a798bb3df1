import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { libpqEnv, type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { registerTempDir, waitFor } from '../helpers/processes.ts';
import { REPO_ROOT, runCommand, type ScriptResult } from '../helpers/scripts.ts';

// scripts/restore-backup.sh, the operator's command: its order of steps (replicas stopped before
// the pre-restore backup and the restore, started again even when the restore fails) and its
// choice of backup. Docker cannot run here, so `docker` is a stand-in on PATH that logs each call
// and runs `docker exec … gpt-proxy-backup ARGS` as scripts/backup.sh ARGS - against a real
// PostgreSQL, so the restores themselves are real.

const DOCKER = `#!/bin/sh
echo "$*" >> "$DOCKER_LOG"
case $1 in
  inspect) echo "$CONTAINER_RUNNING" ;;
  ps) printf 'app1\\napp2\\n' ;;
  stop | start) printf '%s\\n' "$@" | tail -n +2 ;;
  exec)
    shift
    [ "$1" = -i ] && shift
    shift 2 # the container and gpt-proxy-backup
    [ "$1" = "\${HANG_IN:-}" ] && exec sleep 60 # still under way when the test signals
    exec sh "$BACKUP_SCRIPT" "$@"
    ;;
esac
`;

interface Run extends ScriptResult {
  calls: string[];
}

describe('restore-backup.sh', { timeout: 90_000 }, () => {
  let pg: PostgresServer;
  let dir: string;
  let env: Record<string, string>;
  let log: string;

  const run = async (args: string[], extra: Record<string, string> = {}): Promise<Run> => {
    writeFileSync(log, '');
    const r = await runCommand('sh', [join(REPO_ROOT, 'scripts/restore-backup.sh'), ...args], {
      ...env,
      ...extra,
    });
    return { ...r, calls: readFileSync(log, 'utf8').trim().split('\n') };
  };
  const users = async () => {
    const c = await pg.connect(env.PGDATABASE);
    try {
      return (await c.query('SELECT name FROM people ORDER BY name')).rows.map((r) => String(r.name));
    } finally {
      await c.end();
    }
  };
  const sql = async (text: string) => {
    const c = await pg.connect(env.PGDATABASE);
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    pg = await startPostgres();
    const { name } = await pg.createDatabase();
    dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-restore-'));
    registerTempDir(dir);
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    mkdirSync(join(dir, 'backups'));
    writeFileSync(join(bin, 'docker'), DOCKER, { mode: 0o755 });
    log = join(dir, 'docker.log');
    env = {
      ...libpqEnv(pg, name),
      PATH: `${bin}:${pg.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      DOCKER_LOG: log,
      CONTAINER_RUNNING: 'true',
      BACKUP_SCRIPT: join(REPO_ROOT, 'scripts/backup.sh'),
      BACKUP_DIR: join(dir, 'backups'),
      BACKUP_RETENTION: '5',
      BACKUP_FAILED_MARK: join(dir, 'failed'),
    };
    await sql("CREATE TABLE people (name text); INSERT INTO people VALUES ('ada'), ('grace')");
  });
  after(async () => {
    await pg?.destroy();
  });

  it('--latest: replicas stopped, a pre-restore backup, the restore, replicas started', async () => {
    const made = await run(['dev', '--list']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(made.stdout, '', 'no backups yet');
    const none = await run(['dev', '--latest']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no scheduled backup in gpt-proxy-dev-backup yet/);

    const now = spawnSync('sh', [env.BACKUP_SCRIPT ?? '', 'now'], { env, encoding: 'utf8' });
    assert.equal(now.status, 0, now.stderr);
    await sql("INSERT INTO people VALUES ('mallory')");

    const r = await run(['dev', '--latest']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await users(), ['ada', 'grace']);
    assert.deepEqual(
      r.calls.map((c) => c.replace(/gpt-proxy-\d{8}T\d{6}Z\.dump/, 'NAME')),
      [
        'inspect --format {{.State.Running}} gpt-proxy-dev-backup',
        'exec gpt-proxy-dev-backup gpt-proxy-backup list',
        'ps --quiet --filter label=gpt-proxy.stack=gpt-proxy-dev --filter label=gpt-proxy.service=app',
        'stop app1 app2',
        'exec gpt-proxy-dev-backup gpt-proxy-backup now pre-restore',
        'exec gpt-proxy-dev-backup gpt-proxy-backup restore NAME',
        'start app1 app2',
      ],
    );
    assert.ok(
      readdirSync(env.BACKUP_DIR ?? '').some((f) => f.startsWith('pre-restore-')),
      'the state before is kept',
    );
  });

  it('--file: a local dump goes in through stdin; a failed restore still starts the replicas', async () => {
    const name = readdirSync(env.BACKUP_DIR ?? '').find((f) => f.startsWith('gpt-proxy-')) ?? '';
    const local = join(dir, 'offsite.dump');
    writeFileSync(local, readFileSync(join(env.BACKUP_DIR ?? '', name)));
    await sql("DELETE FROM people WHERE name = 'ada'");
    const ok = await run(['dev', '--file', local, '--no-safety-backup']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await users(), ['ada', 'grace']);
    assert.ok(ok.calls.includes('exec -i gpt-proxy-dev-backup gpt-proxy-backup restore -'));
    assert.ok(!ok.calls.some((c) => c.includes(' now ')), 'no safety backup when told so');

    writeFileSync(local, 'not a dump');
    await sql("INSERT INTO people VALUES ('eve')");
    const bad = await run(['dev', '--file', local, '--no-safety-backup']);
    assert.notEqual(bad.code, 0);
    assert.deepEqual(await users(), ['ada', 'eve', 'grace'], 'unchanged');
    assert.equal(bad.calls.at(-1), 'start app1 app2', 'the replicas come back');
  });

  // An SSH session that drops sends SIGHUP to the jobs it ran (the script and its `docker exec`);
  // dash, Debian's sh, runs no EXIT trap when a signal it does not trap ends it.
  for (const [signal, code] of [
    ['SIGHUP', 129],
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal} while the restore runs: the replicas are started again`, async () => {
      writeFileSync(log, '');
      const script = join(REPO_ROOT, 'scripts/restore-backup.sh');
      const args = [script, 'dev', 'gpt-proxy-20300101T000000Z.dump', '--no-safety-backup'];
      const child = spawn('sh', args, {
        env: { ...env, HANG_IN: 'restore' },
        detached: true,
        stdio: 'ignore',
      });
      const exited = once(child, 'exit');
      assert.ok(child.pid, 'sh started'); // never kill(-0): that is this process's own group
      const group = -child.pid;
      try {
        await waitFor(() => readFileSync(log, 'utf8').includes(' restore '), {
          what: 'the restore under way',
        });
        process.kill(group, signal); // the whole process group, as a hangup reaches it
        assert.deepEqual(await exited, [code, null]);
        const calls = readFileSync(log, 'utf8').trim().split('\n');
        assert.equal(calls.at(-1), 'start app1 app2');
      } finally {
        if (child.exitCode === null && child.signalCode === null) process.kill(group, 'SIGKILL');
      }
    });
  }

  it('refuses a stopped backup container and unknown arguments before touching anything', async () => {
    const stopped = await run(['dev', '--latest'], { CONTAINER_RUNNING: 'false' });
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /container gpt-proxy-dev-backup is not running/);
    assert.ok(!stopped.calls.some((c) => c.startsWith('stop')));
    for (const args of [
      ['dev'],
      ['dev', '--bogus'],
      ['bad name', '--latest'],
      ['dev', 'x.dump', '--force'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.ok(!r.calls.some((c) => c.startsWith('stop')), args.join(' '));
    }
  });
});
