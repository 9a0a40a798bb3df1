import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { freePort, pidAlive, registeredPids, spawnServer, waitFor } from '../helpers/processes.ts';
import { type RedisServer, RespError, redisCommands, startRedis } from '../helpers/redis.ts';

function assertGone(pid: number | undefined): void {
  assert.ok(pid !== undefined && pid > 0, 'expected a PID');
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} should be gone`);
}

async function connectionRefused(config: pg.ClientConfig): Promise<void> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  await assert.rejects(client.connect(), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ECONNREFUSED');
    return true;
  });
  await client.end().catch(() => {});
}

describe('processes helpers', () => {
  test('freePort returns distinct usable ports', async () => {
    const a = await freePort();
    const b = await freePort();
    assert.ok(a > 0 && a < 65536);
    assert.ok(b > 0 && b < 65536);
  });

  test('waitFor returns the first truthy value and names what it waited for on timeout', async () => {
    let n = 0;
    assert.equal(await waitFor(() => (++n >= 3 ? n : false), { intervalMs: 1 }), 3);
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('not yet');
        },
        { timeoutMs: 100, intervalMs: 10, what: 'the moon' },
      ),
      /waiting for the moon; last error: not yet/,
    );
  });

  test('spawnServer captures bounded output and stop() kills by PID', async () => {
    const proc = await spawnServer(
      process.execPath,
      ['-e', 'process.stdout.write("x".repeat(5000) + "END\\n"); setInterval(() => {}, 1000)'],
      { name: 'noisy', maxOutputBytes: 1000 },
    );
    assert.ok(registeredPids().some((p) => p.pid === proc.pid));
    await waitFor(() => proc.output().includes('END'), { what: 'output', timeoutMs: 5000 });
    assert.ok(proc.output().length < 1100, 'output should be bounded');
    assert.match(proc.output(), /earlier bytes dropped/);
    const info = await proc.stop('SIGTERM');
    assert.equal(info.signal, 'SIGTERM');
    assertGone(proc.pid);
    assert.ok(!registeredPids().some((p) => p.pid === proc.pid));
  });

  test('stop() escalates to SIGKILL when the signal is ignored', async () => {
    const proc = await spawnServer(process.execPath, [
      '-e',
      'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)',
    ]);
    await waitFor(() => proc.output().includes('ready'), { what: 'ready', timeoutMs: 5000 });
    const info = await proc.stop('SIGTERM', 300);
    assert.equal(info.signal, 'SIGKILL');
    assertGone(proc.pid);
  });

  test('a missing binary is a clear error', async () => {
    await assert.rejects(spawnServer('/nonexistent/binary', []), /Could not start .*ENOENT/);
  });
});

describe('startPostgres', () => {
  let server: PostgresServer | undefined;
  let second: PostgresServer | undefined;

  before(async () => {
    server = await startPostgres();
  });

  after(async () => {
    await server?.destroy();
    await second?.destroy();
  });

  test('answers SELECT 1 with the password, rejects a wrong password', async () => {
    assert.ok(server);
    const client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(rows[0]?.one, 1);
    const { rows: who } = await client.query<{ u: string }>('SELECT current_user AS u');
    assert.equal(who[0]?.u, 'postgres');
    await client.end();

    const bad = new pg.Client({ host: server.host, port: server.port, user: 'postgres', password: 'wrong' });
    bad.on('error', () => {});
    await assert.rejects(bad.connect(), /password authentication failed/);
  });

  test('runs as the postgres OS user when root', { skip: process.getuid?.() !== 0 }, async () => {
    assert.ok(server?.pid);
    const { readFile } = await import('node:fs/promises');
    const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    assert.notEqual(uid, 0);
  });

  test('env() gives the gpt-proxy variables', () => {
    assert.ok(server);
    const env = server.env('mydb');
    assert.deepEqual(env, {
      POSTGRES_HOST: '127.0.0.1',
      POSTGRES_PORT: String(server.port),
      POSTGRES_USER: 'postgres',
      POSTGRES_PASSWORD: server.password,
      POSTGRES_DB: 'mydb',
    });
  });

  test('createDatabase with a random and a given name', async () => {
    assert.ok(server);
    const random = await server.createDatabase();
    assert.match(random.name, /^test_[0-9a-f]+$/);
    const named = await server.createDatabase('harness_named');
    assert.equal(named.name, 'harness_named');
    for (const db of [random, named]) {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query<{ d: string }>('SELECT current_database() AS d');
      assert.equal(rows[0]?.d, db.name);
      await client.end();
    }
    await assert.rejects(server.createDatabase('bad-name;'), /invalid database name/);
  });

  test('stop refuses connections, start brings it back with the data on the same port', async () => {
    assert.ok(server);
    const { url } = await server.createDatabase();
    let client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$survives$$)');
    await client.end();

    const oldPid = server.pid;
    const port = server.port;
    await server.stop();
    assert.equal(server.running, false);
    assertGone(oldPid);
    await connectionRefused({ connectionString: url });

    await server.start();
    assert.equal(server.port, port);
    assert.ok(server.pid && server.pid !== oldPid);
    client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ v: string }>('SELECT v FROM kept');
    assert.deepEqual(rows, [{ v: 'survives' }]);
    await client.end();
  });

  test('a second server runs at the same time; destroy() ends its PID', async () => {
    assert.ok(server);
    second = await startPostgres();
    assert.notEqual(second.port, server.port);
    assert.notEqual(second.password, server.password);
    const [a, b] = await Promise.all([server.connect(), second.connect()]);
    const [ra, rb] = await Promise.all([
      a.query<{ p: string }>("SELECT current_setting('port') AS p"),
      b.query<{ p: string }>("SELECT current_setting('port') AS p"),
    ]);
    assert.equal(ra.rows[0]?.p, String(server.port));
    assert.equal(rb.rows[0]?.p, String(second.port));
    await Promise.all([a.end(), b.end()]);

    const pid = second.pid;
    const dataDir = second.dataDir;
    await second.destroy();
    assertGone(pid);
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(dataDir), false);
    second = undefined;
  });
});

describe('startRedis', () => {
  let redis: RedisServer | undefined;
  let open: RedisServer | undefined;

  before(async () => {
    redis = await startRedis({ password: 'harness-secret' });
  });

  after(async () => {
    await redis?.destroy();
    await open?.destroy();
  });

  test('refuses unauthenticated commands, accepts authenticated ones', async () => {
    assert.ok(redis);
    const [reply] = await redisCommands({ port: redis.port }, [['SET', 'k', 'v']]);
    assert.ok(reply instanceof RespError, 'expected an error reply');
    assert.match(reply.message, /NOAUTH/);

    const client = new Redis({ ...redisOptions(redis), lazyConnect: true });
    await client.connect();
    assert.equal(await client.set('k', 'v'), 'OK');
    assert.equal(await client.get('k'), 'v');
    client.disconnect();

    assert.deepEqual(redis.env(), {
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      REDIS_PASSWORD: 'harness-secret',
    });
    assert.equal(redis.url, `redis://:harness-secret@127.0.0.1:${redis.port}`);
  });

  test('stop refuses connections, start works again on the same port', async () => {
    assert.ok(redis);
    const oldPid = redis.pid;
    await redis.stop();
    assertGone(oldPid);
    await assert.rejects(redisCommands({ port: redis.port }, [['PING']]), { code: 'ECONNREFUSED' });
    await redis.start();
    assert.ok(redis.pid && redis.pid !== oldPid);
    assert.equal(await redis.command('PING'), 'PONG');
  });

  test('without a password; destroy() ends the PID', async () => {
    open = await startRedis();
    assert.equal(open.password, undefined);
    assert.deepEqual(open.env(), { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(open.port) });
    assert.equal(await open.command('SET', 'a', '1'), 'OK');
    assert.equal(await open.command('INCR', 'a'), 2);
    const pid = open.pid;
    await open.destroy();
    assertGone(pid);
    assert.equal(pidAlive(pid ?? -1), false);
    open = undefined;
  });
});

function redisOptions(server: RedisServer) {
  return {
    host: server.host,
    port: server.port,
    password: server.password,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  };
}
