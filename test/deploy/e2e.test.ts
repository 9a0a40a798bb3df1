// The Pulumi program applied to a real Docker engine (the test bed's own dockerd): the program runs
// under mocks, the applier (./applier/) creates what it declares in dependency order and runs its
// hooks for real; pebble issues the certificate through HTTP-01 answered by the nginx container;
// the test then talks HTTPS to nginx's port on 127.0.0.1, restarts parts of the stack, changes a
// setting, applies again and tears everything down. Skips, saying why, where dockerd cannot start.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminKeyFrom } from '../../infra/hooks.ts';
import { openTestBed } from '../docker/testbed.ts';
import { waitFor } from '../helpers/processes.ts';
import type { Capture } from './applier/types.ts';
import { type Deployment, prepareDeployment } from './deployment.ts';
import { callEdge, chatBody, type StreamedEvent } from './edge-client.ts';
import {
  changedResources,
  containerEnv,
  containersNamed,
  crash,
  inspectEnv,
  processEnv,
  psql,
  stackContainers,
  waitServing,
} from './probes.ts';
import { PREFIX, STACK, UPSTREAM_KEYS } from './stack.ts';
import { DELTA_DELAY_MS } from './surroundings.ts';

const bed = await openTestBed();
const HEALTHY = { status: 'healthy', services: { database: 'healthy', redis: 'healthy' } };

describe('deployment end to end: the Pulumi program on the test engine', {
  skip: bed.skip,
  timeout: 20 * 60_000,
}, () => {
  let d: Deployment;
  let first: Capture;
  let adminKey = '';

  before(async () => {
    d = await prepareDeployment(
      bed,
      await bed.images(['postgres', 'redis', 'nginx', 'node', 'pebble', 'fakeUpstream', 'app']),
    );
  });
  // Whatever a failed test left: bed.stop() removes every container, network and volume.
  after(() => bed.stop());

  test('apply: hooks in order, a certificate from pebble via nginx, HTTPS /health healthy', async (t) => {
    first = await d.capture(600);
    const report = await d.apply(t, first);
    const custom = first.resources.filter((r) => r.custom).map((r) => r.name);
    assert.deepEqual(report.created.sort(), custom.sort());
    const hooks = report.ran.filter((name) => name.startsWith('hooks-'));
    assert.deepEqual(hooks, ['hooks-init-db', 'hooks-init-upstream-keys', 'hooks-create-admin']);
    const when = (name: string) => report.events.findIndex((e) => e.includes(` created ${name} `));
    assert.ok(when('certificate-issue-cert') > when('nginx-container'), 'issue-cert ran once nginx was up');
    adminKey = adminKeyFrom(d.applied('hooks-create-admin')?.outputs.stdout ?? '');
    assert.match(adminKey, /^\S{20,}$/, 'create-admin printed a key');
    const activeKeys = await psql(bed, "SELECT count(*) FROM upstream_keys WHERE status = 'active'");
    assert.equal(activeKeys, String(UPSTREAM_KEYS.length));

    // Trusting only pebble's root: an answer at all means nginx serves the certificate pebble
    // issued for the domain (its watcher reloads nginx by itself within seconds).
    d.edge.ca = await d.surroundings().rootPem();
    const health = await waitFor(
      async () => {
        const res = await callEdge(d.edge, { path: '/health', timeoutMs: 5_000 });
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'nginx serving the pebble-issued certificate' },
    );
    assert.deepEqual(JSON.parse(health.body), HEALTHY);
    // certd's own orders at its start fail (nginx, which waits for certd, is not there yet to
    // answer the challenge), so the issue-cert hook orders it once nginx is up.
    const issued = d.applied('certificate-issue-cert')?.outputs.stdout ?? '';
    assert.match(issued, /in place \(CA-issued\)/);
    t.diagnostic(`issue-cert: ${issued}`);
    const certdLog = (await bed.cli.run(['logs', `${PREFIX}-certd`])).stdout.split('\n');
    for (const line of certdLog.filter((l) => /"msg":"[^"]*order/.test(l))) {
      const { time, msg, reason } = JSON.parse(line) as Record<string, string>;
      t.diagnostic(`certd: ${time} ${msg}${reason ? ` (${reason})` : ''}`);
    }
    const expiresAt = report.invokes[0]?.stdout ?? '';
    assert.ok(Date.parse(expiresAt) > Date.now(), `certificateExpiresAt: ${expiresAt}`);
  });

  test('docker inspect shows no secret of the stack: each container names its secret files', async () => {
    const secrets = [...d.secretValues(first), adminKey];
    assert.ok(secrets.length >= 6, `${secrets.length} secret values`);
    const names = await stackContainers(bed);
    const replicas = names.filter((n) => n.startsWith(`${PREFIX}-app-`));
    assert.equal(replicas.length, 2);
    assert.deepEqual(
      names.filter((n) => !replicas.includes(n)),
      ['backup', 'certd', 'nginx', 'postgres', 'redis'].map((s) => `${PREFIX}-${s}`),
    );
    for (const name of names) {
      const inspect = await bed.cli.text(['inspect', name]);
      for (const secret of secrets)
        assert.ok(!inspect.includes(secret), `docker inspect ${name} shows a secret`);
    }
    const file = (name: string) => `/run/secrets/${name}`;
    assert.equal(
      (await inspectEnv(bed, `${PREFIX}-postgres`)).POSTGRES_PASSWORD_FILE,
      file('postgres-password'),
    );
    assert.equal((await inspectEnv(bed, `${PREFIX}-redis`)).REDIS_PASSWORD_FILE, file('redis-password'));
    assert.equal((await inspectEnv(bed, `${PREFIX}-backup`)).PGPASSFILE, file('pgpass'));
    for (const replica of replicas) {
      const env = await inspectEnv(bed, replica);
      assert.equal(env.POSTGRES_PASSWORD_FILE, file('postgres-password'));
      assert.equal(env.REDIS_PASSWORD_FILE, file('redis-password'));
      assert.equal(env.ENCRYPTION_KEY_FILE, file('encryption-key'));
      assert.equal(env.ENCRYPTION_KEY_PREVIOUS_FILE, file('encryption-key-previous'));
    }
    // Nor does the environment the replicas' and the backup's processes start with (under their
    // init). Not asked: Postgres (its entrypoint, as the official image's, exports the file's
    // content to the server) and Redis (redis-server reuses its environment's memory for its
    // process title, so /proc shows nothing there).
    for (const name of [...replicas, `${PREFIX}-backup`]) {
      const environ = await processEnv(bed, name);
      assert.match(environ, /_FILE=\/run\/secrets\/|PGPASSFILE=/, name);
      for (const secret of secrets) assert.ok(!environ.includes(secret), `${name}'s process holds a secret`);
    }
    // The replicas reach Postgres and Redis with their files (the next tests); the backup's pg_dump
    // has no scheduled run here, so one is run now: libpq takes its password file.
    const backup = await bed.cli.run(['exec', `${PREFIX}-backup`, 'gpt-proxy-backup', 'now', 'e2e']);
    assert.match(backup.stdout, /backup written: e2e-\d{8}T\d{6}Z\.dump/);
  });

  test('a chat completion and a streamed one through the whole chain; usage rows in Postgres', async (t) => {
    const chat = await callEdge(d.edge, {
      path: '/v1/chat/completions',
      apiKey: adminKey,
      body: chatBody(false),
    });
    assert.equal(chat.status, 200, chat.body);
    const completion = JSON.parse(chat.body) as { choices: Array<{ message: { content: string } }> };
    assert.ok(completion.choices[0]?.message.content);
    assert.equal(chat.headers['x-ratelimit-limit-requests'], '600');

    const events: StreamedEvent[] = [];
    const stream = await callEdge(d.edge, {
      path: '/v1/chat/completions',
      apiKey: adminKey,
      body: chatBody(true),
      onEvent: (e) => events.push(e),
    });
    assert.equal(stream.status, 200, stream.body);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    assert.equal(events.at(-1)?.data, '[DONE]');
    const deltas = events.filter((e) => e.data.includes('"content"'));
    assert.ok(deltas.length >= 3, `${deltas.length} content events`);
    // Forwarded as they come: the arrivals are spread like the upstream's pauses between them.
    const spread = (deltas.at(-1)?.at ?? 0) - (deltas[0]?.at ?? 0);
    t.diagnostic(
      `stream: ${events.length} events, content at ${deltas.map((e) => e.at.toFixed(0)).join(', ')} ms`,
    );
    assert.ok(spread >= (deltas.length - 1) * DELTA_DELAY_MS * 0.6, `arrived within ${spread.toFixed(0)} ms`);

    const usage = async () =>
      Number(await psql(bed, 'SELECT count(*) FROM usage_logs WHERE total_tokens > 0'));
    await waitFor(async () => (await usage()) >= 2, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: '2 usage rows',
    });
  });

  test('postgres restarted, redis and an app replica crashed: the service recovers by itself', async () => {
    await bed.cli.run(['restart', `${PREFIX}-postgres`], { timeoutMs: 120_000 });
    await waitServing(d.edge, adminKey, 'service back after restarting postgres');
    await crash(bed, `${PREFIX}-redis`);
    await waitServing(d.edge, adminKey, 'service back after redis crashed');
    const [replica] = await containersNamed(bed, `${PREFIX}-app-1-`);
    assert.ok(replica, 'app replica 1 runs');
    await crash(bed, replica);
    await waitServing(d.edge, adminKey, 'service back after an app replica crashed');
  });

  test('rateLimitRpm 600 → 450: only the app replicas change, and they see it', async (t) => {
    const second = await d.capture(450);
    const expected = changedResources(first, second);
    assert.deepEqual(expected, [`${PREFIX}-app-1`, `${PREFIX}-app-2`]);
    const before = await containersNamed(bed, `${PREFIX}-app-`);
    const report = await d.apply(t, second);
    assert.deepEqual(report.replaced.sort(), expected, report.events.join('\n'));
    assert.deepEqual([report.created, report.updated, report.deleted, report.ran], [[], [], [], []]);
    const replicas = await containersNamed(bed, `${PREFIX}-app-`);
    assert.equal(replicas.length, 2);
    for (const name of replicas) {
      assert.ok(!before.includes(name), `${name} is a new container`);
      assert.equal((await containerEnv(bed, name)).RATE_LIMIT_RPM, '450');
    }
    await waitServing(d.edge, adminKey, 'service with the new replicas');
    const chat = await callEdge(d.edge, {
      path: '/v1/chat/completions',
      apiKey: adminKey,
      body: chatBody(false),
    });
    assert.equal(chat.headers['x-ratelimit-limit-requests'], '450');
  });

  test('apply unchanged: nothing changes, create-admin does not run again, one admin', async (t) => {
    const report = await d.apply(t, await d.capture(450));
    const changes = [report.created, report.replaced, report.updated, report.deleted, report.ran];
    assert.deepEqual(changes, [[], [], [], [], []], report.events.join('\n'));
    assert.equal(await psql(bed, 'SELECT count(*) FROM users WHERE is_admin'), '1');
  });

  test('tear down: nothing of the stack is left in the engine', async () => {
    const retained = await d.destroy();
    assert.ok(d.empty());
    // As with `pulumi destroy`, the backups volume stays on purpose (retainOnDelete) and so does
    // the built image; the test removes both, then nothing at all may be left.
    assert.deepEqual(
      retained.map((r) => r.name),
      ['backups-volume'],
    );
    await bed.cli.run(['volume', 'rm', `${PREFIX}-backups`]);
    await bed.cli.run(['image', 'rm', `gpt-proxy-app:${STACK}`]);
    const left = async (args: string[]) => (await bed.cli.text(args)).split('\n').filter(Boolean);
    assert.deepEqual(await left(['ps', '--all', '--quiet']), []);
    assert.deepEqual(await left(['network', 'ls', '--quiet', '--filter', 'type=custom']), []);
    assert.deepEqual(await left(['volume', 'ls', '--quiet']), []);
    assert.deepEqual(await left(['image', 'ls', '--quiet', '--filter', 'reference=gpt-proxy-app:*']), []);
  });
});
