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
    await limiter?.close();
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

  it('settles a reservation with the real usage, refunding and charging', async () => {
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1000 };
    assert.ok(await allowed(id, 0, 1000, 900));
    assert.equal(await allowed(id, 0, 1000, 900), false);
    limiter.settleTokens(id, limits, -850); // used 50 of the 900 reserved
    assert.equal(await allowed(id, 0, 1000, 900), true);
    limiter.settleTokens(id, limits, 500); // used 500 more than reserved
    assert.equal(await allowed(id, 0, 1000, 10), false);
  });

  it('a refund or debt still held is settled in Redis when the key goes idle', async () => {
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1000 };
    assert.ok(await allowed(id, 0, 1000, 900));
    limiter.settleTokens(id, limits, -600); // used 300 of 900
    await limiter.settle();
    const other = new RateLimiter({ redis, now: () => clock });
    const seen = await other.check(id, limits, 100);
    assert.equal(seen.kind === 'allowed' && seen.headers['x-ratelimit-remaining-tokens'], '600');
    await other.close();
  });

  it('keeps a TAT to a fraction of a token on a huge limit, so small charges and refunds count', async () => {
    // tpm 1e9 spends 0.00006 ms per token at 13-digit millisecond times: written with Lua's
    // tostring (%.14g) only 0.1 ms survived, and a refund under 0.05 ms (833 tokens) was lost.
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1e9 };
    const exact = new RateLimiter({ redis, now: () => clock, leaseMs: 0 });
    const tat = async () => Number(await redis.get(`rate_limit:{${id}}:tokens`)) - clock;
    const near = (actual: number, expected: number, what: string) =>
      assert.ok(
        Math.abs(actual - expected) < 0.001,
        `${what}: TAT now+${actual} ms, expected now+${expected} ms`,
      );
    assert.equal((await exact.check(id, limits, 1_000)).kind, 'allowed');
    near(await tat(), 0.06, 'after charging 1,000 tokens');
    assert.equal((await exact.check(id, limits, 9_000)).kind, 'allowed');
    near(await tat(), 0.6, 'after charging 10,000 tokens');
    for (let i = 0; i < 10; i++) {
      exact.settleTokens(id, limits, -300);
      await exact.settle();
    }
    near(await tat(), 0.42, 'after ten refunds of 300 tokens');
    await exact.close();
  });

  it('keeps its state under rate_limit: keys that expire', async () => {
    const id = ++keyId;
    await allowed(id, 5, 100, 10);
    const keys = (await redis.keys('*')).filter((k) => k.includes(`{${id}}`)).sort();
    assert.deepEqual(keys, [`rate_limit:{${id}}:requests`, `rate_limit:{${id}}:tokens`]);
    assert.ok((await redis.pttl(keys[0] as string)) > 0);
  });

  describe('leases: a busy key is not asked about on every request', () => {
    // With leaseMs 1000 a replica leases 1/60 of a limit per call: 10 requests of rpm 600.
    const leasing = () => new RateLimiter({ redis, now: () => clock, leaseMs: 1_000 });
    const gcraCalls = async () => {
      const stats = await redis.info('commandstats');
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    };

    it('one call to Redis serves a lease; headers count the leased units as still available', async () => {
      const id = ++keyId;
      const a = leasing();
      const before = await gcraCalls();
      const first = await a.check(id, { rpm: 600, tpm: 0 }, 0);
      assert.equal(first.kind === 'allowed' && first.headers['x-ratelimit-remaining-requests'], '599');
      for (let i = 2; i <= 33; i++) {
        const d = await a.check(id, { rpm: 600, tpm: 0 }, 0);
        assert.equal(d.kind === 'allowed' && d.headers['x-ratelimit-remaining-requests'], String(600 - i));
      }
      assert.equal((await gcraCalls()) - before, 3, '33 requests, 11 per call');
      await a.close();
    });

    it('checkLocal answers from the lease without Redis, and defers to check when it is spent', async () => {
      const id = ++keyId;
      const a = leasing();
      const limits = { rpm: 600, tpm: 0 };
      assert.equal(a.checkLocal(id, limits, 0), undefined, 'nothing leased yet');
      assert.equal((await a.check(id, limits, 0)).kind, 'allowed'); // leases 11, spends 1
      const before = await gcraCalls();
      for (let i = 2; i <= 11; i++) {
        const d = a.checkLocal(id, limits, 0);
        assert.equal(d?.kind === 'allowed' && d.headers['x-ratelimit-remaining-requests'], String(600 - i));
      }
      assert.equal(a.checkLocal(id, limits, 0), undefined, 'the lease is spent');
      assert.equal((await gcraCalls()) - before, 0);
      assert.deepEqual(a.checkLocal(id, { rpm: 0, tpm: 0 }, 5), { kind: 'allowed', headers: {} }, 'no limit');
      await a.close();
    });

    it('concurrent requests wait for the lease in flight instead of each asking', async () => {
      const id = ++keyId;
      const a = leasing();
      const before = await gcraCalls();
      const all = await Promise.all(Array.from({ length: 20 }, () => a.check(id, { rpm: 600, tpm: 0 }, 0)));
      assert.ok(all.every((d) => d.kind === 'allowed'));
      assert.equal((await gcraCalls()) - before, 2);
      await a.close();
    });

    it('a small limit leases nothing: concurrent requests each ask Redis, none waits for another', async () => {
      const id = ++keyId;
      const a = leasing();
      const before = await gcraCalls();
      const all = await Promise.all(Array.from({ length: 10 }, () => a.check(id, { rpm: 60, tpm: 0 }, 0)));
      assert.deepEqual(
        all.map((d) => d.kind === 'allowed' && d.headers['x-ratelimit-remaining-requests']).sort(),
        ['50', '51', '52', '53', '54', '55', '56', '57', '58', '59'],
      );
      assert.equal((await gcraCalls()) - before, 10);
      await a.close();
    });

    it('two replicas together never admit more than the limit, and unused leases come back', async () => {
      const id = ++keyId;
      const limits = { rpm: 600, tpm: 60_000 };
      const replicas = [leasing(), leasing()];
      let admitted = 0;
      for (let i = 0; i < 700; i++) {
        const d = await (replicas[i % 2] as RateLimiter).check(id, limits, 10);
        if (d.kind === 'allowed') admitted++;
      }
      assert.ok(admitted <= 600, `admitted ${admitted}`);
      assert.ok(admitted >= 580, `admitted ${admitted}: at most a lease per replica left unused`);
      for (const r of replicas) await r.close();
      // With every lease returned, Redis holds exactly what was admitted.
      const probe = new RateLimiter({ redis, now: () => clock });
      const seen = await probe.check(id, limits, 0);
      assert.notEqual(seen.kind, 'unavailable');
      const headers = seen.kind === 'unavailable' ? {} : seen.headers;
      const remaining = 600 - admitted - (seen.kind === 'allowed' ? 1 : 0);
      assert.equal(headers['x-ratelimit-remaining-requests'], String(remaining));
      assert.equal(headers['x-ratelimit-remaining-tokens'], String(60_000 - 10 * admitted));
      await probe.close();
    });

    it('a key left idle returns what its replica holds', async () => {
      const id = ++keyId;
      const a = new RateLimiter({ redis, now: () => clock, leaseMs: 1_000, idleMs: 50 });
      assert.equal((await a.check(id, { rpm: 600, tpm: 0 }, 0)).kind, 'allowed');
      clock += 50; // idle, but less than the 100 ms one request takes to refill
      await a.settle({ idleOnly: true });
      const b = new RateLimiter({ redis, now: () => clock });
      const seen = await b.check(id, { rpm: 600, tpm: 0 }, 0);
      assert.equal(seen.kind === 'allowed' && seen.headers['x-ratelimit-remaining-requests'], '598');
      await a.close();
      await b.close();
    });
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
    const down = new RateLimiter({ redis: broken });
    const d = await down.check(1, { rpm: 5, tpm: 0 }, 0);
    assert.equal(d.kind, 'unavailable');
    await down.close();
    broken.disconnect();
  });
});
