import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DecryptionError, SecretBox } from '../../app/src/crypto/secret-box.ts';
import { libpqEnv, type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { registerTempDir } from '../helpers/processes.ts';
import { runCommand, runScript } from '../helpers/scripts.ts';

// scripts/backup.sh against Debian's PostgreSQL 15, the major of the pinned postgres:15 image:
// a seeded database is dumped, damaged, restored and compared row by row; retention keeps exactly
// N; a failed or corrupt dump never replaces a good one.

const SCRIPT = fileURLToPath(new URL('../../scripts/backup.sh', import.meta.url));

/** Runs backup.sh with `args` and `env` (plus PATH), feeding `stdin` if given. */
const backup = (args: string[], env: Record<string, string>, stdin?: Buffer) =>
  runCommand('sh', [SCRIPT, ...args], env, stdin);

describe('database backups (scripts/backup.sh) against PostgreSQL 15', { timeout: 120_000 }, () => {
  let pg: PostgresServer;
  let env: Record<string, string>;
  let appEnv: Record<string, string>;
  let dir: string;
  const upstream = [1, 2].map((n) => `sk-backup-test-${n}-${randomBytes(12).toString('hex')}`);
  const encryptionKey = randomBytes(32).toString('hex');

  const query = async (sql: string) => {
    const client = await pg.connect(appEnv.POSTGRES_DB);
    try {
      return (await client.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  /** Every row of every table, and every sequence's position: what "identical" means here. */
  const snapshot = async () => {
    const tables = await query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    const rows: Record<string, unknown> = {};
    for (const { table_name } of tables) {
      rows[String(table_name)] = await query(`SELECT * FROM "${table_name}" ORDER BY 1`);
    }
    rows.sequences = await query(
      "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
    );
    return JSON.stringify(rows);
  };
  // The backups, not the script's hidden state files beside them.
  const dumps = () =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.dump'))
      .sort();

  before(async () => {
    pg = await startPostgres();
    const { name } = await pg.createDatabase();
    appEnv = { ...(pg.env(name) as unknown as Record<string, string>), ENCRYPTION_KEY: encryptionKey };
    assert.equal((await runScript('init-db', [], appEnv)).code, 0);
    const seeded = await runScript('init-upstream-keys', [], {
      ...appEnv,
      OPENAI_API_KEYS: upstream.join(','),
    });
    assert.equal(seeded.code, 0, seeded.stderr);
    const admin = await runScript(
      'create-admin',
      ['--username', 'admin', '--email', 'a@example.com'],
      appEnv,
    );
    assert.equal(admin.code, 0, admin.stderr);
    await query(`INSERT INTO usage_logs (id, request_id, route, model, prompt_tokens, completion_tokens, total_tokens, status_code, latency_ms)
      SELECT gen_random_uuid(), 'req-' || n, '/v1/chat/completions', 'gpt-4o', n, 2 * n, 3 * n, 200, n FROM generate_series(1, 500) n`);
    dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-backups-'));
    registerTempDir(dir);
    env = {
      ...libpqEnv(pg, name),
      BACKUP_DIR: dir,
      BACKUP_RETENTION: '3',
      BACKUP_FAILED_MARK: join(dir, '..', `${name}.failed`),
    };
  });
  after(async () => {
    await pg?.destroy();
  });

  it('dumps, and a restore after damage brings back every row, sequence and sealed key', async () => {
    const before = await snapshot();
    const made = await backup(['now'], env);
    assert.equal(made.code, 0, made.stderr);
    const [name] = dumps();
    assert.match(name ?? '', /^gpt-proxy-\d{8}T\d{6}Z\.dump$/);
    assert.match(made.stdout, new RegExp(`backup written: ${name} \\(\\d+ bytes\\)`));
    assert.equal(statSync(join(dir, name ?? '')).mode & 0o777, 0o600, 'only its owner reads a dump');
    assert.ok(!made.stdout.includes(pg.password) && !made.stderr.includes(pg.password));

    // The damage: a table gone, keys deleted, a stranger table added.
    await query('DROP TABLE usage_logs; DELETE FROM upstream_keys; CREATE TABLE intruder (x int)');
    assert.notEqual(await snapshot(), before);

    const restored = await backup(['restore', name ?? ''], env);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(await snapshot(), before, 'every row and sequence as it was');
    assert.equal(
      (await query("SELECT to_regclass('public.intruder') AS t"))[0]?.t,
      null,
      'exactly the backup',
    );
    const again = await runScript('init-db', [], appEnv);
    assert.match(again.stdout, /migrations: applied=0/, 'the schema is the migrated one');
    const user = await query(
      "INSERT INTO users (username, email) VALUES ('later', 'l@example.com') RETURNING id",
    );
    assert.equal(user[0]?.id, 2, 'identity sequences continue where they were');

    // The sealed keys open with ENCRYPTION_KEY - and only with it.
    const rows = await query(
      'SELECT key_ciphertext, key_iv, key_auth_tag, encryption_key_id FROM upstream_keys ORDER BY id',
    );
    const sealed = rows.map((r) => ({
      ciphertext: r.key_ciphertext as Buffer,
      iv: r.key_iv as Buffer,
      authTag: r.key_auth_tag as Buffer,
      keyId: String(r.encryption_key_id),
    }));
    assert.deepEqual(
      sealed.map((s) => new SecretBox({ current: encryptionKey }).open(s)).sort(),
      [...upstream].sort(),
    );
    const stranger = new SecretBox({ current: randomBytes(32).toString('hex') });
    assert.throws(() => stranger.open(sealed[0] as (typeof sealed)[number]), DecryptionError);
  });

  it('restores a dump given on stdin (an off-site copy)', async () => {
    const before = await snapshot();
    const [name] = dumps();
    const copy = readFileSync(join(dir, name ?? ''));
    await query('TRUNCATE users CASCADE');
    const restored = await backup(['restore', '-'], env, copy);
    assert.equal(restored.code, 0, restored.stderr);
    const after = JSON.parse(await snapshot()) as { users: unknown[] };
    assert.equal(after.users.length, 1, 'the admin is back (the user added later was not in the dump)');
    assert.notEqual(JSON.stringify(after), before);
  });

  it('a corrupt dump restores nothing and leaves the database as it was', async () => {
    const before = await snapshot();
    const [name] = dumps();
    const corrupt = readFileSync(join(dir, name ?? '')).subarray(0, 1500);
    const failed = await backup(['restore', '-'], env, corrupt);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /restore FAILED: the database is unchanged/);
    assert.equal(await snapshot(), before);
    const missing = await backup(['restore', 'gpt-proxy-nonexistent.dump'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no backup named/);
    assert.equal((await backup(['restore', '../etc/passwd'], env)).code, 1, 'names only, no paths');
  });

  it('keeps exactly BACKUP_RETENTION scheduled backups, the newest; labelled ones are left alone', async () => {
    for (const day of ['01', '02', '03', '04', '05'])
      writeFileSync(join(dir, `gpt-proxy-202001${day}T030000Z.dump`), 'old');
    writeFileSync(join(dir, 'pre-restore-20190101T000000Z.dump'), 'kept by hand');
    const made = await backup(['now'], env);
    assert.equal(made.code, 0, made.stderr);
    const scheduled = dumps().filter((f) => f.startsWith('gpt-proxy-'));
    assert.equal(scheduled.length, 3);
    const newest = scheduled.at(-1) ?? '';
    assert.ok(newest > 'gpt-proxy-2021', 'the new one is kept');
    assert.deepEqual(scheduled.slice(0, 2).sort(), scheduled.slice(0, 2), 'sorted by time');
    assert.ok(!scheduled.includes('gpt-proxy-20200103T030000Z.dump'), 'older ones removed first');
    assert.ok(dumps().includes('pre-restore-20190101T000000Z.dump'));
    const labelled = await backup(['now', 'pre-restore'], env);
    assert.equal(labelled.code, 0, labelled.stderr);
    assert.equal(
      dumps().filter((f) => f.startsWith('gpt-proxy-')).length,
      3,
      'labelled backups do not count',
    );
    const listed = await backup(['list'], env);
    assert.match(listed.stdout, /^gpt-proxy-\d{8}T\d{6}Z\.dump \d+$/m);
  });

  it('a failing dump leaves no partial file, removes nothing and marks the container unhealthy', async () => {
    const kept = dumps();
    const failed = await backup(['now'], { ...env, PGPASSWORD: 'wrong' });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /backup FAILED/);
    assert.deepEqual(dumps(), kept, 'nothing written, nothing pruned');
    assert.ok(!readdirSync(dir, { withFileTypes: true }).some((f) => f.name.endsWith('.partial')));
    const sick = await backup(['health'], env);
    assert.equal(sick.code, 1);
    assert.match(sick.stderr, /last backup failed at/);
    assert.equal((await backup(['now'], env)).code, 0);
    assert.equal((await backup(['health'], env)).code, 0, 'healthy again after a good backup');
  });

  it('a dump that does not read back in full is never kept', async () => {
    // A pg_dump that exits 0 but wrote garbage (a full disk, a broken pipe): the read-back fails.
    const bin = mkdtempSync(join(tmpdir(), 'gpt-proxy-bad-pg-dump-'));
    registerTempDir(bin);
    writeFileSync(
      join(bin, 'pg_dump'),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
      '#!/bin/sh\nfor a; do case $a in --file=*) f=${a#--file=};; esac; done\nprintf PGDMP > "$f"\n',
      { mode: 0o755 },
    );
    const kept = dumps();
    const failed = await backup(['now'], { ...env, PATH: `${bin}:${env.PATH}` });
    assert.equal(failed.code, 1);
    assert.deepEqual(dumps(), kept);
    assert.equal((await backup(['now'], env)).code, 0, 'and the next good one clears the mark');
  });
});
