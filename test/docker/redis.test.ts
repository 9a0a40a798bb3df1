// The redis stand-in against the official image's documented interface: configuration on the
// command line (here exactly as the Pulumi program starts it), the redis user, /data for the
// append-only file, redis-cli, the entrypoint's `redis-server` for flag arguments, and protected
// mode off by default so other containers can connect.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HEALTH as PROGRAM_HEALTH, START as PROGRAM_START } from '../../infra/redis.ts';
import { processes, waitForLog } from './probes.ts';
import type { ImageTags } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();
const REDIS_UID = 999;
const PASSWORD = 'redis-Test_pw.1';
/** A warning line the docker CLI prints on stderr about the host, e.g. when IPv4 forwarding is off. */
const DOCKER_WARNING = /^WARNING: .*(\n|$)/gm;

describe('redis stand-in', { skip: bed.skip }, () => {
  let tags: ImageTags;

  before(async () => {
    tags = await bed.images(['redis']);
    await bed.network('redis-net');
  });
  after(() => bed.stop());

  /** redis-cli in a second container on the test network. */
  const cli = async (host: string, args: string[], password?: string) => {
    const env = password === undefined ? [] : ['--env', `REDISCLI_AUTH=${password}`];
    const result = await bed.cli.run(
      ['run', '--rm', '--network', 'redis-net', ...env, tags.redis, 'redis-cli', '-h', host, ...args],
      {
        allowFailure: true,
      },
    );
    // redis-cli may answer an error on stderr, so both are read; docker's own warnings about the
    // host ("WARNING: IPv4 forwarding is disabled..." where the host does not forward) are not
    // the server's answer.
    return `${result.stdout}${result.stderr.replace(DOCKER_WARNING, '')}`.trim();
  };

  test('takes its configuration from the command line as the program gives it, as redis, with AOF in /data', async () => {
    // infra/redis.ts: the password is an uploaded root-owned 0444 file, its path in the environment.
    const redis = await bed.run({
      name: 'redis-program',
      image: tags.redis,
      network: 'redis-net',
      aliases: ['redis'],
      user: 'redis',
      env: { REDIS_PASSWORD_FILE: '/run/secrets/redis-password' },
      files: [{ path: '/run/secrets/redis-password', content: `${PASSWORD}\n`, mode: 0o444 }],
      volumes: ['redis-data:/data'],
      command: ['sh', '-c', PROGRAM_START],
    });
    await waitForLog(redis, /Ready to accept connections/);
    assert.match(await cli('redis', ['ping']), /NOAUTH/);
    assert.equal(await cli('redis', ['ping'], PASSWORD), 'PONG');
    assert.equal(await cli('redis', ['set', 'k', 'v'], PASSWORD), 'OK');
    assert.equal(await cli('redis', ['config', 'get', 'appendonly'], PASSWORD), 'appendonly\nyes');

    // The program's health check, run inside the container.
    const health = await redis.exec(['sh', '-c', PROGRAM_HEALTH]);
    assert.equal(health.code, 0);
    const files = await redis.exec(['sh', '-c', 'ls /data/appendonlydir && stat -c %U /data']);
    assert.match(files.stdout, /appendonly\.aof/);
    assert.match(files.stdout, /^redis$/m);
    const server = (await processes(redis)).find((p) => p.pid === 1);
    assert.equal(server?.uid, REDIS_UID);
    assert.match(server?.cmdline ?? '', /redis-server/);
    assert.ok(!server?.cmdline.includes(PASSWORD), 'the password is on no command line');
    const conf = await redis.exec(['sh', '-c', 'stat -c %a /tmp/redis-auth.conf']);
    assert.equal(conf.stdout.trim(), '600', 'the redis.conf line is for redis only');
  });

  test('runs flag arguments as redis-server, dropping root to redis, with protected mode off', async () => {
    const redis = await bed.run({
      name: 'redis-flags',
      image: tags.redis,
      network: 'redis-net',
      aliases: ['redis-flags'],
      command: ['--appendonly', 'yes', '--maxmemory', '64mb'],
    });
    await waitForLog(redis, /Ready to accept connections/);
    // No password and the default bind: another container still gets in (protected mode off).
    assert.equal(await cli('redis-flags', ['ping']), 'PONG');
    assert.equal(await cli('redis-flags', ['config', 'get', 'maxmemory']), 'maxmemory\n67108864');
    assert.equal(await cli('redis-flags', ['config', 'get', 'protected-mode']), 'protected-mode\nno');
    const server = (await processes(redis)).find((p) => p.pid === 1);
    assert.equal(server?.uid, REDIS_UID, 'started as root, the server runs as redis');
  });
});
