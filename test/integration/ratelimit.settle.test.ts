import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { type Limits, RateLimiter } from '../../app/src/ratelimit/limiter.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { gate } from '../helpers/redis-gate.ts';

/**
 * What a replica returns to Redis and charges there when its budgets go out of use, when a call
 * fails, and after close: each amount exactly once, never spent after it went back, never lost.
 * The clock stands still, so a key's TAT in Redis is the sum of what was charged to it.
 */
describe('rate limiter settlement (real Redis)', () => {
  let server: RedisServer;
  let redis: Redis;
  const clock = 1_800_000_000_000;
  const now = () => clock;
  let keyId = 1000;
  const open: Array<{ limiter: RateLimiter; conn: Redis }> = [];

  before(async () => {
    server = await startRedis();
    redis = await connect();
  });
  after(async () => {
    for (const { limiter, conn } of open) {
      await limiter.close();
      conn.disconnect();
    }
    redis?.disconnect();
    await server?.destroy();
  });

  async function connect(options: RedisOptions = {}): Promise<Redis> {
    const conn = new Redis({ host: server.host, port: server.port, lazyConnect: true, ...options });
    await conn.connect();
    return conn;
  }

  /** A limiter on a connection of its own, so a test may gate that connection's commands. */
  async function replica(options: {
    leaseMs?: number;
    redis?: RedisOptions;
    onError?: (e: unknown) => void;
  }) {
    const conn = await connect(options.redis);
    const limiter = new RateLimiter({ redis: conn, now, leaseMs: options.leaseMs, onError: options.onError });
    open.push({ limiter, conn });
    return { limiter, conn };
  }

  /** How far the key's token (or request) TAT is ahead of now, in ms; 0 when it is not held. */
  const ahead = async (id: number, what: 'tokens' | 'requests' = 'tokens') => {
    const tat = await redis.get(`rate_limit:{${id}}:${what}`);
    return tat === null ? 0 : Number(tat) - clock;
  };
  const near = (actual: number, expected: number, what: string) =>
    assert.ok(
      Math.abs(actual - expected) < 1e-6,
      `${what}: TAT now+${actual} ms, expected now+${expected} ms`,
    );

  /** Remaining requests and tokens as a fresh replica that leases nothing sees them. */
  async function remaining(id: number, limits: Limits) {
    const probe = new RateLimiter({ redis, now, leaseMs: 0 });
    const d = await probe.check(id, limits, 0);
    await probe.close();
    assert.equal(d.kind, 'allowed');
    const h = d.kind === 'allowed' ? d.headers : {};
    return {
      requests: Number(h['x-ratelimit-remaining-requests']),
      tokens: Number(h['x-ratelimit-remaining-tokens']),
    };
  }

  it('a settlement whose reply timed out is not applied again when retried', async () => {
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1_000 };
    const errors: unknown[] = [];
    const { limiter } = await replica({
      leaseMs: 0,
      redis: { commandTimeout: 200 },
      onError: (e) => errors.push(e),
    });
    assert.equal((await limiter.check(id, limits, 900)).kind, 'allowed');
    limiter.settleTokens(id, limits, -600); // used 300 of 900
    // Redis holds writes (scripts too) for 600 ms: the client gives up at 200 ms, Redis runs it later.
    await redis.call('CLIENT', 'PAUSE', '600', 'WRITE');
    await limiter.settle();
    assert.match(String(errors[0]), /timed out/);
    await sleep(800);
    near(await ahead(id), 300 * 60, 'the refund, applied by Redis after the timeout');
    await limiter.settle(); // the failed settlement is sent again: Redis knows it ran
    near(await ahead(id), 300 * 60, 'the refund, applied once');
    const marks = await redis.keys(`rate_limit:{${id}}:settled:*`);
    assert.equal(marks.length, 1);
    assert.ok((await redis.pttl(marks[0] as string)) > 0, 'the mark expires');
  });

  it("a failed settlement is kept and retried in its own limits, even after the key's changed", async () => {
    const id = ++keyId;
    const before = { rpm: 0, tpm: 1_000 }; // 60 ms a token
    const changed = { rpm: 0, tpm: 2_000 }; // 30 ms a token
    const { limiter, conn } = await replica({ leaseMs: 0 });
    assert.equal((await limiter.check(id, before, 100)).kind, 'allowed');
    limiter.settleTokens(id, before, 500); // a debt of 500 tokens, held until the next call
    gate(conn, 'gpSettle').failNext();
    // The new limits retire the old budget; settling its debt fails.
    assert.equal((await limiter.check(id, changed, 20)).kind, 'allowed');
    near(await ahead(id), 100 * 60 + 20 * 30, 'the debt is not charged yet');
    await limiter.settle({ idleOnly: true }); // the sweeper
    near(await ahead(id), (100 + 500) * 60 + 20 * 30, 'the debt, charged in the old limits');
  });

  it('a settlement held over a period is sent without its returns, but with its charges', async () => {
    let at = clock;
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1_000 };
    const conn = await connect();
    const limiter = new RateLimiter({ redis: conn, now: () => at, leaseMs: 0 });
    open.push({ limiter, conn });
    const settle = gate(conn, 'gpSettle');
    assert.equal((await limiter.check(id, limits, 900)).kind, 'allowed'); // TAT now+54 s
    limiter.settleTokens(id, limits, -300);
    settle.failNext();
    await limiter.settle();
    at += 60_001; // its mark may be gone: the return, applied twice, would over-admit
    await limiter.settle();
    near(await ahead(id), 900 * 60, 'the return was dropped');
    limiter.settleTokens(id, limits, 200);
    settle.failNext();
    await limiter.settle();
    at += 60_001;
    await limiter.settle();
    near(Number(await redis.get(`rate_limit:{${id}}:tokens`)) - at, 200 * 60, 'the charge, applied');
  });

  it('a budget retired while its lease call is in flight: waiters spend nothing that went back', async () => {
    const id = ++keyId;
    const limits = { rpm: 600, tpm: 60_000 }; // leases 10 requests and 1,000 tokens per call
    const { limiter, conn } = await replica({ leaseMs: 1_000 });
    assert.equal((await limiter.check(id, limits, 10)).kind, 'allowed');
    const gcra = gate(conn, 'gpGcra');
    gcra.hold();
    // Takes a request and the 1,000 leased tokens, and asks Redis for the rest: held.
    const big = limiter.check(id, limits, 2_000);
    // 9 requests left but no tokens: waits for that call.
    const small = limiter.check(id, limits, 5);
    await limiter.settle(); // retires the budget (as close does): its 9 requests go back
    gcra.release();
    assert.equal((await big).kind, 'allowed');
    assert.equal((await small).kind, 'allowed');
    await limiter.close();
    // Admitted: 3 requests and 10 + 2,000 + 5 tokens. Redis must hold exactly that (the probe
    // charges one request more); a waiter spending a returned request left it one short.
    assert.deepEqual(await remaining(id, limits), { requests: 600 - 3 - 1, tokens: 60_000 - 2_015 });
  });

  it('a debt restored after a failed call on a retired budget is still charged', async () => {
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1_000 }; // 60 ms a token
    const { limiter, conn } = await replica({ leaseMs: 0 });
    assert.equal((await limiter.check(id, limits, 100)).kind, 'allowed');
    limiter.settleTokens(id, limits, 300); // used 300 tokens beyond the reservation
    const gcra = gate(conn, 'gpGcra');
    gcra.hold();
    const next = limiter.check(id, limits, 50); // carries the debt: held
    await limiter.settle();
    gcra.release({ fail: true });
    assert.equal((await next).kind, 'unavailable');
    await limiter.close();
    near(await ahead(id), (100 + 300) * 60, 'the reservation and the debt');
  });

  it("a reservation settled under the key's old limits keeps the current lease and settles in the old terms", async () => {
    const id = ++keyId;
    const before = { rpm: 0, tpm: 6_000 }; // 10 ms a token, leases 100
    const changed = { rpm: 0, tpm: 60_000 }; // 1 ms a token, leases 1,000
    const { limiter } = await replica({ leaseMs: 1_000 });
    assert.equal((await limiter.check(id, before, 1_000)).kind, 'allowed');
    // An admin raised the limit; the next request sees it, the first is still running.
    assert.equal((await limiter.check(id, changed, 10)).kind, 'allowed');
    limiter.settleTokens(id, before, -600); // the first used 400 of its 1,000
    assert.equal(limiter.checkLocal(id, changed, 10)?.kind, 'allowed', 'the current lease still serves');
    await limiter.close();
    near(await ahead(id), (1_000 - 600) * 10 + (10 + 10) * 1, 'each settled in the limits it was charged in');
  });

  it('close waits for a lease call in flight and returns what it brings', async () => {
    const id = ++keyId;
    const limits = { rpm: 600, tpm: 0 }; // leases 10 requests per call
    const { limiter, conn } = await replica({ leaseMs: 1_000 });
    const gcra = gate(conn, 'gpGcra');
    const settle = gate(conn, 'gpSettle');
    gcra.hold();
    const first = limiter.check(id, limits, 0);
    const closed = limiter.close();
    settle.hold();
    gcra.release();
    assert.equal((await first).kind, 'allowed');
    const done = await Promise.race([closed.then(() => 'closed'), sleep(100).then(() => 'open')]);
    settle.release();
    assert.equal(done, 'open', 'close waits while the lease it brought is being returned');
    await closed;
    near(await ahead(id, 'requests'), 100, 'one request charged, the 10 leased returned');
  });

  it('a request that ends after close settles in Redis at once', async () => {
    const id = ++keyId;
    const limits = { rpm: 0, tpm: 1_000 };
    const { limiter } = await replica({ leaseMs: 0 });
    assert.equal((await limiter.check(id, limits, 100)).kind, 'allowed');
    await limiter.close();
    limiter.settleTokens(id, limits, 200); // a request cut off at shutdown used 200 tokens more
    const deadline = Date.now() + 2_000;
    while ((await ahead(id)) < 300 * 60 && Date.now() < deadline) await sleep(20);
    near(await ahead(id), 300 * 60, 'the reservation and the late debt');
  });
});
