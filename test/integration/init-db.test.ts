import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrate, readMigrations } from '../../app/src/db/migrate.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { runScript } from '../helpers/scripts.ts';

describe('init-db', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.destroy();
  });

  async function tables(db: string): Promise<string[]> {
    const client = await pg.connect(db);
    try {
      const { rows } = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      );
      return rows.map((r) => r.table_name);
    } finally {
      await client.end();
    }
  }

  it('applies every migration to an empty database, then is a no-op', async () => {
    const { name } = await pg.createDatabase();
    const first = await runScript('init-db', [], pg.env(name) as unknown as Record<string, string>);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied 0001_init\.sql/);
    assert.deepEqual(await tables(name), [
      'api_keys',
      'schema_migrations',
      'upstream_keys',
      'usage_logs',
      'users',
    ]);

    const again = await runScript('init-db', [], pg.env(name) as unknown as Record<string, string>);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /migrations: applied=0 total=\d+/);
  });

  it('is safe when two processes run at once', async () => {
    const { name } = await pg.createDatabase();
    const env = pg.env(name) as unknown as Record<string, string>;
    const [a, b] = await Promise.all([runScript('init-db', [], env), runScript('init-db', [], env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const total = (await readMigrations()).length;
    const appliedCounts = [a, b].map((r) => Number(/applied=(\d+)/.exec(r.stdout)?.[1]));
    assert.deepEqual(appliedCounts.sort(), [0, total], 'exactly one process applies the migrations');
    const client = await pg.connect(name);
    const { rows } = await client.query('SELECT id FROM schema_migrations');
    await client.end();
    assert.equal(rows.length, total);
  });

  it('refuses a migration changed after it was applied', async () => {
    const { name } = await pg.createDatabase();
    const client = await pg.connect(name);
    try {
      const migrations = await readMigrations();
      await migrate(client, migrations);
      const edited = migrations.map((m, i) => (i === 0 ? { ...m, sha256: 'edited' } : m));
      await assert.rejects(migrate(client, edited), /0001_init\.sql was changed after it was applied/);
    } finally {
      await client.end();
    }
  });

  it('rolls a failing migration back whole and reports it', async () => {
    const { name } = await pg.createDatabase();
    const client = await pg.connect(name);
    try {
      const broken = [
        {
          id: 1,
          name: '0001_bad.sql',
          sha256: 'x',
          sql: 'CREATE TABLE half_done (id int); SELECT no_such_column FROM half_done;',
        },
      ];
      await assert.rejects(
        migrate(client, broken),
        /migration 0001_bad\.sql failed: column "no_such_column"/,
      );
      const { rows } = await client.query(
        "SELECT to_regclass('half_done') AS t, (SELECT count(*) FROM schema_migrations) AS n",
      );
      assert.equal(rows[0].t, null, 'nothing of the failed migration remains');
      assert.equal(rows[0].n, '0');
    } finally {
      await client.end();
    }
  });

  it('exits 78 naming the variable when the configuration is invalid, echoing no secret', async () => {
    const r = await runScript('init-db', [], { POSTGRES_HOST: '127.0.0.1', DB_POOL_SIZE: 'many' });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /POSTGRES_PASSWORD: is required/);
    assert.match(r.stderr, /DB_POOL_SIZE: must be a whole number/);
  });

  it('refuses a --wait that is not whole seconds with exit 2 and usage, before touching the database', async () => {
    const { name } = await pg.createDatabase();
    const env = pg.env(name) as unknown as Record<string, string>;
    for (const args of [['--wait', '2m'], ['--wait', 'x'], ['--wait=-1'], ['--wait', '-1'], ['--wait']]) {
      const r = await runScript('init-db', args, env);
      assert.equal(r.code, 2, `args ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^init-db: .*--wait.*\nusage: init-db \[--wait SECONDS\]\n$/s);
    }
    assert.deepEqual(await tables(name), []);
  });

  it('reports an unreachable database without the password', async () => {
    const env = { ...(pg.env('postgres') as unknown as Record<string, string>), POSTGRES_PORT: '1' };
    const r = await runScript('init-db', ['--wait', '0'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /init-db: .*ECONNREFUSED/);
    assert.ok(!r.stderr.includes(pg.password));
  });
});
