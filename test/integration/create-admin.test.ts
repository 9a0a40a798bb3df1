import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashApiKey } from '../../app/src/crypto/api-keys.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { runScript } from '../helpers/scripts.ts';
import { type AdminFixture, assertError, type Page, startAdminFixture, type User } from './admin-fixture.ts';

describe('create-admin', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.destroy();
  });

  async function setup() {
    const { name } = await pg.createDatabase();
    const env = pg.env(name) as unknown as Record<string, string>;
    assert.equal((await runScript('init-db', [], env)).code, 0);
    const run = (...args: string[]) => runScript('create-admin', args, env);
    const sql = async (text: string) => {
      const client = await pg.connect(name);
      try {
        return (await client.query(text)).rows;
      } finally {
        await client.end();
      }
    };
    const keys = () =>
      sql(
        'SELECT k.key_hash, k.status, u.username, u.is_admin, u.disabled FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY k.id',
      );
    return { run, keys, sql };
  }

  it('creates an admin and prints its key once, as the last line; stores only the hash', async () => {
    const db = await setup();
    const r = await db.run('--username', 'admin', '--email', 'admin@example.com');
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.trimEnd().split('\n').at(-1) ?? '';
    assert.match(key, /^sk-gp-[A-Za-z0-9_-]{43}$/);
    const rows = await db.keys();
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0].key_hash, hashApiKey(key));
    assert.equal(rows[0].is_admin, true);
    assert.equal(rows[0].status, 'active');
  });

  it('leaves an existing user alone: exit 0, no key, a message on stderr', async () => {
    const db = await setup();
    await db.run('--username', 'admin', '--email', 'admin@example.com');
    const plain = await db.run('--username', 'admin', '--email', 'admin@example.com');
    assert.equal(plain.code, 0);
    assert.equal(plain.stdout, '');
    assert.match(plain.stderr, /already exists; no key issued/);
    const json = await db.run('--username', 'admin', '--email', 'admin@example.com', '--json');
    assert.deepEqual(JSON.parse(json.stdout), {
      username: 'admin',
      email: 'admin@example.com',
      created: false,
    });
    assert.equal((await db.keys()).length, 1);
  });

  it('prints JSON with the key when asked', async () => {
    const db = await setup();
    const r = await db.run('--username', 'ops', '--email', 'ops@example.com', '--json');
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out), ['username', 'email', 'created', 'apiKey']);
    assert.equal(out.created, true);
    assert.deepEqual((await db.keys())[0].key_hash, hashApiKey(out.apiKey));
  });

  it('--rotate-key issues a new key and revokes the old ones', async () => {
    const db = await setup();
    const first = JSON.parse(
      (await db.run('--username', 'admin', '--email', 'a@example.com', '--json')).stdout,
    );
    const r = await db.run('--username', 'admin', '--email', 'a@example.com', '--json', '--rotate-key');
    assert.equal(r.code, 0, r.stderr);
    const second = JSON.parse(r.stdout);
    assert.equal(second.created, false);
    assert.notEqual(second.apiKey, first.apiKey);
    const rows = await db.keys();
    assert.deepEqual(
      rows.map((x) => x.status),
      ['revoked', 'active'],
    );
    assert.deepEqual(rows[1].key_hash, hashApiKey(second.apiKey));
  });

  it('--rotate-key re-enables a disabled admin, whose new key would otherwise be refused', async () => {
    const db = await setup();
    await db.run('--username', 'admin', '--email', 'a@example.com');
    await db.sql("UPDATE users SET disabled = true WHERE username = 'admin'");
    const r = await db.run('--username', 'admin', '--email', 'a@example.com', '--rotate-key');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /re-enabled/);
    const rows = await db.keys();
    assert.deepEqual(
      rows.map((x) => [x.status, x.disabled]),
      [
        ['revoked', false],
        ['active', false],
      ],
    );
    // Rotating an enabled admin's key says nothing about enabling.
    const again = await db.run('--username', 'admin', '--email', 'a@example.com', '--rotate-key');
    assert.doesNotMatch(again.stderr, /re-enabled/);
  });

  it('two at once create one user with one key', async () => {
    const db = await setup();
    const results = await Promise.all([
      db.run('--username', 'admin', '--email', 'a@example.com', '--json'),
      db.run('--username', 'admin', '--email', 'a@example.com', '--json'),
    ]);
    assert.deepEqual(
      results.map((r) => r.code),
      [0, 0],
    );
    assert.deepEqual(results.map((r) => JSON.parse(r.stdout).created).sort(), [false, true]);
    assert.equal((await db.keys()).length, 1);
  });

  it('refuses bad arguments with usage and exit 2', async () => {
    const db = await setup();
    for (const args of [
      [],
      ['--username', 'x'],
      ['--username', 'bad name', '--email', 'a@b.c'],
      ['--username', 'x', '--email', 'nope'],
      ['--bogus'],
    ]) {
      const r = await db.run(...args);
      assert.equal(r.code, 2, `args ${args.join(' ')}`);
      assert.match(r.stderr, /usage: create-admin/);
    }
  });
});

// README's recovery recipe (--rotate-key) must work also when the admin was demoted by another admin.
describe('create-admin for an existing user who is not an admin', () => {
  let f: AdminFixture;
  before(async () => {
    f = await startAdminFixture();
  });
  after(async () => {
    await f?.close();
  });
  const run = (...args: string[]) => runScript('create-admin', args, f.stack.env);
  const userRow = async (id: number) =>
    (await f.stack.db.query('SELECT is_admin, disabled FROM users WHERE id = $1', [id])).rows[0];
  const keyStatuses = async (userId: number) =>
    (await f.stack.db.query('SELECT status FROM api_keys WHERE user_id = $1 ORDER BY id', [userId])).rows.map(
      (r) => r.status,
    );

  it('--rotate-key makes it an admin again, with a new key that works on the admin API', async () => {
    const bob = await f.stack.issueKey({ admin: true, username: 'bob' });
    const demoted = await f.call('PATCH', `/users/${bob.userId}`, { body: { is_admin: false } });
    assert.equal(demoted.status, 200, demoted.text);
    assertError(await f.call('GET', '/users', { key: bob.key }), 403, 'insufficient_permissions');

    const r = await run('--username', 'bob', '--email', 'bob@example.com', '--rotate-key', '--json');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const out = JSON.parse(lines[0] as string);
    assert.deepEqual(Object.keys(out), ['username', 'email', 'created', 'apiKey']);
    assert.equal(out.created, false);
    assert.match(r.stderr, /revoked 1; the user was not an admin and is one now/);
    assert.deepEqual(await userRow(bob.userId), { is_admin: true, disabled: false });
    assert.deepEqual(await keyStatuses(bob.userId), ['revoked', 'active']);
    const users = await f.call<Page<User>>('GET', '/users', { key: out.apiKey });
    assert.equal(users.status, 200, users.text);
    assert.equal(users.body.data.find((u) => u.id === bob.userId)?.is_admin, true);
  });

  it('without --rotate-key: exit 0, no key, and stderr says it is not an admin', async () => {
    const carol = await f.stack.issueKey({ username: 'carol' });
    const plain = await run('--username', 'carol', '--email', 'carol@example.com');
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, '');
    assert.match(plain.stderr, /carol already exists; it is not an admin; no key issued/);
    const json = await run('--username', 'carol', '--email', 'carol@example.com', '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      username: 'carol',
      email: 'carol@example.com',
      created: false,
    });
    assert.deepEqual(await userRow(carol.userId), { is_admin: false, disabled: false });
    assert.deepEqual(await keyStatuses(carol.userId), ['active']);
  });
});
