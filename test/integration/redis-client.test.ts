// The app's Redis connection against a real redis-server that stops answering (SIGSTOP) without
// closing its connections: the connection is dropped and remade, nothing piles up meanwhile, and
// the rate limiter still fails open in time and loses no settlement.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { RateLimiter } from '../../app/src/ratelimit/limiter.ts';
import { createRedis } from '../../app/src/redis/client.ts';
import { waitFor } from '../helpers/processes.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';

/** The commands a connection holds: written and unanswered, or kept to resend after a reconnect. */
function held(client: Redis): number {
  const c = client as unknown as { commandQueue: { length: number }; prevCommandQueue?: { length: number } };
  return c.commandQueue.length + (c.prevCommandQueue?.length ?? 0);
}

describe('Redis connection (real Redis, frozen)', { timeout: 120_000 }, () => {
  let server: RedisServer;
  const clients: Redis[] = [];

  before(async () => {
    server = await startRedis({ password: true });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await server?.destroy();
  });

  async function connect(): Promise<Redis> {
    const client = createRedis(
      { url: undefined, host: server.host, port: server.port, password: server.password },
      () => {},
    );
    clients.push(client);
    await waitFor(() => client.status === 'ready', { what: 'the connection to be ready' });
    return client;
  }

  /** Sends `perTick` PINGs every 50 ms for `ms` (failures expected). */
  async function pingFor(client: Redis, ms: number, perTick = 50): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      for (let i = 0; i < perTick; i++) client.ping().catch(() => {});
      await sleep(50);
    }
  }

  it('a Redis that stops answering is dropped and reconnected: commands do not pile up, and work again after', async () => {
    const client = await connect();
    server.pause();
    try {
      const pinging = pingFor(client, 8_000);
      await waitFor(() => client.status !== 'ready', {
        timeoutMs: 5_000,
        what: 'the silent connection to be dropped',
      });
      const atDrop = held(client);
      await pinging; // 5 s or more of traffic after the drop, none of it answered
      assert.ok(held(client) <= atDrop, `held ${held(client)} commands, ${atDrop} when dropped`);
    } finally {
      server.resume();
    }
    await waitFor(() => client.status === 'ready', { timeoutMs: 10_000, what: 'the reconnect' });
    assert.equal(await client.ping(), 'PONG');
    assert.equal(held(client), 0);
  });

  it('meanwhile the limiter answers "unavailable" within its bound, and a settlement that failed is applied once after', async () => {
    const clock = 1_800_000_000_000;
    const client = await connect();
    const limiter = new RateLimiter({ redis: client, now: () => clock, leaseMs: 0 });
    const limits = { rpm: 0, tpm: 1_000 }; // 60 ms a token
    const [settled, checked] = [1, 2];
    const ahead = async (id: number) =>
      Number(await server.command('GET', `rate_limit:{${id}}:tokens`)) - clock;
    try {
      assert.equal((await limiter.check(settled, limits, 100)).kind, 'allowed');
      limiter.settleTokens(settled, limits, 400); // a debt of 400 tokens, held until settled
      server.pause();
      try {
        const started = performance.now();
        assert.equal((await limiter.check(checked, limits, 10)).kind, 'unavailable');
        const ms = performance.now() - started;
        assert.ok(ms < 2_500, `RATE_LIMIT_FAIL_OPEN can act after ${Math.round(ms)} ms`);
        await limiter.settle(); // the debt is sent, unanswered: kept
        await waitFor(() => client.status !== 'ready', { timeoutMs: 5_000, what: 'the drop' });
        await limiter.settle(); // no connection: kept
      } finally {
        server.resume();
      }
      await waitFor(() => client.status === 'ready', { timeoutMs: 10_000, what: 'the reconnect' });
      await limiter.settle();
      assert.equal(await ahead(settled), (100 + 400) * 60, 'the charge and the debt, each once');
      // Redis may still run the check it read before freezing; ioredis must not send it again.
      assert.ok((await ahead(checked)) <= 10 * 60, 'a check given up on is not charged twice');
    } finally {
      await limiter.close();
    }
  });
});
