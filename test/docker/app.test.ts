// The app image, built from the repository's real Dockerfile on the node base stand-in: it starts
// as the unprivileged `node` user, answers /health/live on a port published to 127.0.0.1, reaches
// the postgres and redis stand-ins over the test network by alias (/health), and its scripts run
// from dist/ against them. Also the node base itself: Node 24 and npm, user node (uid 1000).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { NODE_DIST } from './node-dist.ts';
import { processes, waitForHttp, waitForLog } from './probes.ts';
import type { ImageTags } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();
const DB = { POSTGRES_USER: 'gpt_proxy', POSTGRES_DB: 'gpt_proxy', POSTGRES_PASSWORD: 'pg-App-Test-1' };
const REDIS_PASSWORD = 'redis-App-Test-1';

describe('app image', { skip: bed.skip }, () => {
  let tags: ImageTags;
  const appEnv = () => ({
    ...DB,
    POSTGRES_HOST: 'postgres',
    REDIS_HOST: 'redis',
    REDIS_PASSWORD,
    ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    OPENAI_BASE_URL: 'http://fake-upstream:8080/v1',
    LOG_LEVEL: 'warn',
  });

  before(async () => {
    tags = await bed.images(['postgres', 'redis', 'node', 'app']);
    await bed.network('app-net');
    const postgres = await bed.run({
      name: 'app-postgres',
      image: tags.postgres,
      network: 'app-net',
      aliases: ['postgres'],
      user: 'postgres',
      env: DB,
    });
    const redis = await bed.run({
      name: 'app-redis',
      image: tags.redis,
      network: 'app-net',
      aliases: ['redis'],
      user: 'redis',
      env: { REDIS_PASSWORD },
      command: [
        'sh',
        '-c',
        'printf "requirepass %s\\n" "$REDIS_PASSWORD" > /tmp/auth.conf && exec redis-server /tmp/auth.conf',
      ],
    });
    await waitForLog(postgres, /init process complete[\s\S]*ready to accept connections/);
    await waitForLog(redis, /Ready to accept connections/);
  });
  after(() => bed.stop());

  test('the node base has Node 24 with npm, and the node user with uid 1000', async () => {
    const run = (command: string[]) => bed.cli.text(['run', '--rm', tags.node, ...command]);
    assert.equal(await run(['node', '--version']), `v${NODE_DIST.nodeVersion}`);
    assert.equal(await run(['npm', '--version']), NODE_DIST.npmVersion);
    assert.equal(await run(['id', 'node']), 'uid=1000(node) gid=1000(node) groups=1000(node)');
    // The entrypoint hands flags to node, as the official image's does.
    assert.equal(await run(['-e', 'console.log(process.versions.node)']), NODE_DIST.nodeVersion);
  });

  test('starts as node, answers /health/live on 127.0.0.1 and reaches postgres and redis by alias', async () => {
    const app = await bed.run({
      name: 'app',
      image: tags.app,
      network: 'app-net',
      env: appEnv(),
      publish: [8000],
    });
    const port = await app.hostPort(8000);
    const live = await waitForHttp(`http://127.0.0.1:${port}/health/live`, { container: app });
    assert.ok(live.length > 0);
    const health = JSON.parse(await waitForHttp(`http://127.0.0.1:${port}/health`, { container: app }));
    assert.deepEqual(health, { status: 'healthy', services: { database: 'healthy', redis: 'healthy' } });

    const main = (await processes(app)).find((p) => p.pid === 1);
    assert.equal(main?.uid, 1000);
    assert.match(
      main?.cmdline ?? '',
      /^node --max-semi-space-size=16 --heap-growing-percent=100 dist\/app\/src\/main\.js\s*$/,
    );
    assert.equal(await app.inspect('{{.Config.User}}'), 'node');
  });

  test("the image's scripts run from dist/ against the stand-ins (init-db)", async () => {
    const args = ['run', '--rm', '--network', 'app-net'];
    for (const [k, v] of Object.entries(appEnv())) args.push('--env', `${k}=${v}`);
    const result = await bed.cli.run([...args, tags.app, 'node', 'dist/scripts/init-db.js'], {
      allowFailure: true,
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });
});
