import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { openSse } from '../helpers/sse-client.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

const canary = (label: string) => `${label}-canary-${randomBytes(8).toString('hex')}`;

describe('proxy: secrets and prompts never reach the logs', () => {
  let stack: TestStack;
  const upstreamKeys = [canary('sk-upstream-a'), canary('sk-upstream-b')];
  const prompt = canary('PROMPT');
  const completion = canary('COMPLETION');

  before(async () => {
    stack = await startStack({ upstreamKeys, fake: { answer: `Here it is: ${completion}` } });
  });
  after(async () => {
    await stack?.destroy();
  });

  async function exercise(app: InProcessApp, key: string) {
    const h = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }] });
    assert.equal(
      (await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: h, body })).status,
      200,
    );
    const stream = await openSse(
      `${app.url}/v1/chat/completions`,
      { authorization: h.authorization },
      {
        model: 'gpt-4o',
        messages: [{ role: 'user', content: prompt }],
        stream: true,
      },
    );
    await stream.rest();
    // Upstream failures: a 500 and a 401 (whose body names the masked upstream key).
    stack.fake.setKeyBehavior(upstreamKeys[0] as string, 'server_error', { times: 1 });
    stack.fake.setKeyBehavior(upstreamKeys[1] as string, 'server_error', { times: 1 });
    await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: h, body });
    stack.fake.setKeyBehavior(upstreamKeys[0] as string, 'invalid_key', { times: 1 });
    await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: h, body });
    await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'api-key': key, 'content-type': 'application/json' },
      body,
    });
  }

  function secrets(key: string): string[] {
    return [
      stack.pg.password,
      stack.redis.password ?? '',
      stack.encryptionKey,
      key,
      ...upstreamKeys,
      prompt,
      completion,
    ];
  }

  it('on success and upstream failure, and with Postgres and Redis down', async () => {
    const app = await startAppInProcess(stack.env, { poolRefreshMs: 200 });
    try {
      const { key } = await stack.issueKey();
      await exercise(app, key);

      await stack.redis.stop();
      const health = await fetch(`${app.url}/health`);
      assert.equal(health.status, 503);
      assert.deepEqual(((await health.json()) as { services: unknown }).services, {
        database: 'healthy',
        redis: 'unhealthy',
      });

      await stack.pg.stop();
      const fresh = canary('sk-gp-unknown');
      const r = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer sk-gp-${'A'.repeat(43)}`,
          'content-type': 'application/json',
          'x-note': fresh,
        },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }] }),
      });
      assert.equal(r.status, 503);
      const down = await fetch(`${app.url}/health`);
      assert.deepEqual(((await down.json()) as { services: unknown }).services, {
        database: 'unhealthy',
        redis: 'unhealthy',
      });
      await new Promise((res) => setTimeout(res, 500)); // let the pool refresh fail and log

      const log = app.logText();
      assert.match(log, /API key lookup failed/);
      assert.match(log, /refresh upstream keys failed/);
      for (const secret of secrets(key))
        assert.ok(!log.includes(secret), 'a secret or prompt reached the log');
      assert.ok(!log.includes('Bearer'), 'an Authorization header reached the log');
    } finally {
      await app.stop();
      await stack.pg.start();
      await stack.redis.start();
    }
  });

  it('LOG_PROMPT_BODY=true logs prompts and completions (and still no credential)', async () => {
    const app = await startAppInProcess({ ...stack.env, LOG_PROMPT_BODY: 'true' });
    try {
      stack.fake.clearKeyBehaviors();
      const { key } = await stack.issueKey();
      await exercise(app, key);
      const log = app.logText();
      assert.ok(log.includes(prompt), 'the prompt is logged when asked');
      assert.ok(log.includes(completion), 'the completion is logged when asked');
      const streamed = app.logs().find((l) => l.stream === true && l.status === 200);
      assert.match(String(streamed?.completion), /data: /, 'a streamed completion is logged too');
      for (const secret of secrets(key).filter((s) => s !== prompt && s !== completion)) {
        assert.ok(!log.includes(secret), 'a secret reached the log');
      }
    } finally {
      await app.stop();
    }
  });
});
