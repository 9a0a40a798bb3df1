import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RateLimiter } from '../../app/src/ratelimit/limiter.ts';
import { formatReset } from '../../app/src/ratelimit/reset-format.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';

describe('rate limiter (GCRA in one Lua script, real Redis)', () => {
  let server: RedisServer;
  let redis: Redis;
  let clock = 1_800_000_000_000;
  let limiter: RateLimiter;
  let keyId = 0;

  before(async () => {
    server = await startRedis();
    redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    await redis.connect();
    limiter = new RateLimiter({ redis, now: () => clock });
  });
  after(async () => {
    redis?.disconnect();
    await server?.destroy();
  });

  const allowed = async (id: number, rpm: number, tpm = 0, tokens = 0) =>
    (await limiter.check(id, { rpm, tpm }, tokens)).kind === 'allowed';

  it('allows a burst of the limit, then one per period/limit; never two windows back to back', async () => {
    const id = ++keyId;
    for (let i = 0; i < 5; i++) assert.ok(await allowed(id, 5), `request ${i + 1}`);
    const denied = await limiter.check(id, { rpm: 5, tpm: 0 }, 0);
    assert.equal(denied.kind, 'denied');
    if (denied.kind === 'denied') {
      assert.equal(denied.by, 'requests');
      assert.equal(denied.retryAfterMs, 12_000);
      assert.equal(denied.headers['x-ratelimit-remaining-requests'], '0');
      assert.equal(denied.headers['x-ratelimit-reset-requests'], '1m0s');
    }
    clock += 11_999;
    assert.equal(await allowed(id, 5), false);
    clock += 1;
    assert.equal(await allowed(id, 5), true);
    // A fixed-window limiter would allow 5 more right after a window edge; GCRA does not.
    clock += 48_100; // past the minute mark since the burst
    let burst = 0;
    while (burst < 10 && (await allowed(id, 5))) burst++;
    assert.equal(burst, 4, 'only what refilled since, not a fresh window');
  });

  it('reports remaining and reset like OpenAI', async () => {
    const id = ++keyId;
    const first = await limiter.check(id, { rpm: 60, tpm: 1000 }, 100);
    assert.equal(first.kind, 'allowed');
    assert.deepEqual(first.kind === 'allowed' && first.headers, {
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '900',
      'x-ratelimit-reset-tokens': '6s',
    });
    assert.equal(formatReset(120), '120ms');
    assert.equal(formatReset(360_000), '6m0s');
    assert.equal(formatReset(3_723_000), '1h2m3s');
  });

  it('checks both limits atomically: a token denial charges no request', async () => {
    const id = ++keyId;
    assert.ok(await allowed(id, 10, 1000, 800));
    const denied = await limiter.check(id, { rpm: 10, tpm: 1000 }, 300);
    assert.equal(denied.kind === 'denied' && denied.by, 'tokens');
    const next = await limiter.check(id, { rpm: 10, tpm: 1000 }, 100);
    assert.equal(next.kind, 'allowed');
    assert.equal(next.kind === 'allowed' && next.headers['x-ratelimit-remaining-requests'], '8');
  });

  it('reconciles a reservation with the real usage, refunding and charging', async () => {
    const id = ++keyId;
    assert.ok(await allowed(id, 0, 1000, 900));
    assert.equal(await allowed(id, 0, 1000, 900), false);
    await limiter.reconcile(id, 1000, -850); // used 50 of the 900 reserved
    assert.equal(await allowed(id, 0, 1000, 900), true);
    await limiter.reconcile(id, 1000, 500); // used 500 more than reserved
    assert.equal(await allowed(id, 0, 1000, 10), false);
  });

  it('keeps its state under rate_limit: keys that expire', async () => {
    const id = ++keyId;
    await allowed(id, 5, 100, 10);
    const keys = (await redis.keys('*')).filter((k) => k.includes(`{${id}}`)).sort();
    assert.deepEqual(keys, [`rate_limit:{${id}}:requests`, `rate_limit:{${id}}:tokens`]);
    assert.ok((await redis.pttl(keys[0] as string)) > 0);
  });

  it('answers unavailable (never throws) when Redis is down', async () => {
    const broken = new Redis({
      host: '127.0.0.1',
      port: 1,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    broken.on('error', () => {});
    const d = await new RateLimiter({ redis: broken }).check(1, { rpm: 5, tpm: 0 }, 0);
    assert.equal(d.kind, 'unavailable');
    broken.disconnect();
  });
});
