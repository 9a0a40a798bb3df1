import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';

/** A numbered SQL file from db/migrations. */
export interface Migration {
  id: number;
  name: string;
  sql: string;
  sha256: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

// Any constant works; it only has to be the same for every process that migrates this database.
const ADVISORY_LOCK_ID = 7_422_113_001;
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Reads the migration files in order; a file that does not follow `NNNN_name.sql` is an error. */
export async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_NAME.exec(file);
    if (!match?.[1]) throw new Error(`migration file ${file} must be named NNNN_name.sql`);
    const sql = await readFile(new URL(file, dir), 'utf8');
    const id = Number(match[1]);
    if (migrations.some((m) => m.id === id)) throw new Error(`two migrations are numbered ${match[1]}`);
    migrations.push({ id, name: file, sql, sha256: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock so
 * that two processes migrating at once run one after the other (the second finds nothing to
 * do). An applied migration whose file changed or disappeared stops everything: released
 * migrations are immutable.
 */
export async function migrate(client: pg.ClientBase, migrations: Migration[]): Promise<MigrationResult> {
  await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_ID]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ id: number; name: string; sha256: string }>(
      'SELECT id, name, sha256 FROM schema_migrations ORDER BY id',
    );
    for (const row of rows) {
      const file = migrations.find((m) => m.id === row.id);
      if (!file) throw new Error(`migration ${row.name} is applied but its file is missing`);
      if (file.sha256 !== row.sha256) {
        throw new Error(
          `migration ${row.name} was changed after it was applied; add a new migration instead`,
        );
      }
    }
    const applied: string[] = [];
    for (const m of migrations.filter((m) => !rows.some((r) => r.id === m.id))) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (id, name, sha256) VALUES ($1, $2, $3)', [
          m.id,
          m.name,
          m.sha256,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
      }
      applied.push(m.name);
    }
    return { applied, alreadyApplied: rows.length };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_ID]).catch(() => {});
  }
}
