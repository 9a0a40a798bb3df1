// The postgres stand-in against the official image's documented interface: initialisation of an
// empty data volume from POSTGRES_USER / POSTGRES_PASSWORD (or its _FILE) / POSTGRES_DB, the
// postgres user, password authentication over the network, pg_isready, /docker-entrypoint-initdb.d,
// a kept cluster on restart, and a refusal to initialise without a password.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { processes, waitForExit, waitForLog } from './probes.ts';
import type { ImageTags } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();
const POSTGRES_UID = 999;
const ENV = { POSTGRES_USER: 'gpt_proxy', POSTGRES_DB: 'gpt_proxy', POSTGRES_PASSWORD: 'pw-Test-1' };

describe('postgres stand-in', { skip: bed.skip }, () => {
  let tags: ImageTags;

  before(async () => {
    tags = await bed.images(['postgres']);
    await bed.network('pg-net');
  });
  after(() => bed.stop());

  /** Runs a client container on the test network: `psql`/`pg_isready` against alias `host`. */
  const client = async (command: string[], env: Record<string, string> = {}) => {
    const args = ['run', '--rm', '--network', 'pg-net'];
    for (const [k, v] of Object.entries(env)) args.push('--env', `${k}=${v}`);
    return bed.cli.run([...args, tags.postgres, ...command], { allowFailure: true, timeoutMs: 60_000 });
  };

  test('initialises an empty volume from its environment and a password file as postgres, answers pg_isready by alias', async () => {
    // The Pulumi program's way: --user postgres from the start, a named volume, an alias, the
    // password an uploaded root-owned 0444 file named by POSTGRES_PASSWORD_FILE.
    const { POSTGRES_PASSWORD: password, ...settings } = ENV;
    const pg = await bed.run({
      name: 'pg-env',
      image: tags.postgres,
      network: 'pg-net',
      aliases: ['postgres'],
      user: 'postgres',
      env: { ...settings, POSTGRES_PASSWORD_FILE: '/run/secrets/postgres-password' },
      files: [{ path: '/run/secrets/postgres-password', content: `${password}\n`, mode: 0o444 }],
      volumes: ['pg-env-data:/var/lib/postgresql/data'],
      options: ['--shm-size', '128m'],
    });
    await waitForLog(pg, /init process complete[\s\S]*ready to accept connections/);
    const ready = await client([
      'pg_isready',
      '-h',
      'postgres',
      '-U',
      ENV.POSTGRES_USER,
      '-d',
      ENV.POSTGRES_DB,
    ]);
    assert.equal(ready.code, 0, ready.stdout + ready.stderr);
    assert.match(ready.stdout, /postgres:5432 - accepting connections/);

    const sql =
      'SELECT current_user, current_database(), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()';
    const psql = ['psql', '-h', 'postgres', '-U', ENV.POSTGRES_USER, '-d', ENV.POSTGRES_DB, '-Atc', sql];
    const good = await client(psql, { PGPASSWORD: ENV.POSTGRES_PASSWORD });
    assert.equal(good.stdout.trim(), 'gpt_proxy|gpt_proxy|UTF8', good.stderr);
    const bad = await client(psql, { PGPASSWORD: 'wrong' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /password authentication failed for user "gpt_proxy"/);

    const postmaster = (await processes(pg)).find((p) => p.pid === 1);
    assert.equal(postmaster?.uid, POSTGRES_UID, JSON.stringify(postmaster));
  });

  test('runs /docker-entrypoint-initdb.d once, drops root to postgres, and keeps the cluster on restart', async () => {
    const pg = await bed.run({
      name: 'pg-initdb',
      image: tags.postgres,
      network: 'pg-net',
      env: ENV,
      volumes: ['pg-initdb-data:/var/lib/postgresql/data'],
      files: [
        { path: '/docker-entrypoint-initdb.d/10-table.sql', content: 'CREATE TABLE seeded (note text);\n' },
        {
          path: '/docker-entrypoint-initdb.d/20-row.sh',
          content:
            '#!/bin/sh\nset -e\npsql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "INSERT INTO seeded VALUES (\'from-sh\')"\n',
          mode: 0o755,
        },
      ],
    });
    const log = await waitForLog(pg, /init process complete[\s\S]*ready to accept connections/);
    assert.match(log, /running \/docker-entrypoint-initdb\.d\/10-table\.sql/);
    assert.match(log, /running \/docker-entrypoint-initdb\.d\/20-row\.sh/);
    const server = (await processes(pg)).find((p) => p.pid === 1);
    assert.equal(server?.uid, POSTGRES_UID, 'started as root, the server runs as postgres');

    await bed.cli.run(['restart', pg.name], { timeoutMs: 90_000 });
    const again = await waitForLog(pg, /Skipping initialization[\s\S]*ready to accept connections/);
    assert.equal(again.match(/running \/docker-entrypoint-initdb\.d\/10-table\.sql/g)?.length, 1);
    const rows = await pg.exec([
      'psql',
      '-U',
      'gpt_proxy',
      '-d',
      'gpt_proxy',
      '-Atc',
      'SELECT note FROM seeded',
    ]);
    assert.equal(rows.stdout.trim(), 'from-sh');
  });

  test('refuses to initialise without a password', async () => {
    const pg = await bed.run({ name: 'pg-nopass', image: tags.postgres, env: { POSTGRES_USER: 'x' } });
    assert.equal(await waitForExit(pg), 1);
    assert.match(await pg.logs(), /superuser password is not specified/);
  });
});
