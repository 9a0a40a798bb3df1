// The authenticator's cache against real Postgres: what it answers without a query, that a
// lookup running while invalidate() is called cannot bring back what the change made obsolete,
// and what requests get, and within how long, while Postgres does not answer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { ApiKeyAuthenticator } from '../../app/src/auth/api-key-auth.ts';
import { LastUsedRecorder } from '../../app/src/auth/last-used.ts';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

describe('API key lookups (real Postgres): the cached answer', () => {
  let stack: TestStack;
  let queries = 0;
  let clock = Date.now();
  let counted: pg.Pool;

  before(async () => {
    stack = await startStack();
    // The authenticator's own queries are counted; the test's key inserts go around it.
    counted = {
      query: (...args: Parameters<pg.Pool['query']>) => {
        queries++;
        return (stack.db.query as (...a: unknown[]) => unknown)(...args);
      },
    } as unknown as pg.Pool;
  });
  after(async () => {
    await stack?.destroy();
  });

  /**
   * A pool whose next query runs on Postgres at once but hands its (real) result over only when
   * released: the lookup has read the row, and what happens meanwhile comes after that read.
   */
  function heldPool() {
    let read = () => {};
    const hasRead = new Promise<void>((resolve) => {
      read = resolve;
    });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = false;
    const pool = {
      async query(...args: Parameters<pg.Pool['query']>) {
        const hold = !held;
        held = true;
        const result = await (stack.db.query as (...a: unknown[]) => Promise<unknown>)(...args);
        if (hold) {
          read();
          await released;
        }
        return result;
      },
    } as unknown as pg.Pool;
    return { pool, hasRead, release };
  }

  const revoke = (id: number) => stack.db.query("UPDATE api_keys SET status = 'revoked' WHERE id = $1", [id]);

  it('answers from the cache without a query, until the TTL has passed', async () => {
    const auth = new ApiKeyAuthenticator({ pool: counted, ttlMs: 4_000, now: () => clock });
    const { key, id } = await stack.issueKey();
    assert.equal(auth.authenticateCached(key), undefined, 'never looked up');
    const first = await auth.authenticate(key);
    assert.equal(first.valid && first.key.id, id);
    const before = queries;
    assert.deepEqual(auth.authenticateCached(key), first);
    assert.equal(queries, before, 'no query for a cached key');
    clock += 4_000;
    assert.equal(auth.authenticateCached(key), undefined, 'stale: ask Postgres again');
  });

  it('judges expiry at each call, also on a cached row; refuses a malformed key without a query', async () => {
    const auth = new ApiKeyAuthenticator({ pool: counted, ttlMs: 600_000, now: () => clock });
    const { key } = await stack.issueKey({ expiresAt: new Date(clock + 60_000) });
    assert.equal((await auth.authenticate(key)).valid, true);
    clock += 60_000;
    assert.deepEqual(auth.authenticateCached(key), { valid: false, reason: 'expired' });
    const before = queries;
    assert.deepEqual(auth.authenticateCached('sk-not-ours'), { valid: false, reason: 'unknown' });
    assert.equal(queries, before);
  });

  it('a lookup that read the row before a revocation and invalidate() does not cache it, nor serve later callers', async () => {
    const held = heldPool();
    const auth = new ApiKeyAuthenticator({ pool: held.pool, ttlMs: 4_000, now: () => clock });
    const { key, id } = await stack.issueKey();
    const early = auth.authenticate(key);
    await held.hasRead; // it holds the active row
    await revoke(id);
    auth.invalidate();
    const late = auth.authenticate(key); // asked after the change: must not join the early lookup
    held.release();
    assert.equal((await early).valid, true, 'asked before the revocation');
    assert.deepEqual(await late, { valid: false, reason: 'revoked' });
    assert.deepEqual(auth.authenticateCached(key), { valid: false, reason: 'revoked' });
  });

  it('a lookup that fails after invalidate() does not fall back to the entry cached before it', async () => {
    const auth = new ApiKeyAuthenticator({ pool: stack.db, ttlMs: 4_000, now: () => clock });
    const { key, id } = await stack.issueKey();
    assert.equal((await auth.authenticate(key)).valid, true);
    clock += 4_000; // past the TTL, well within the stale window: the next call queries
    // Hold the lookup on a table lock, revoke meanwhile, then cancel it: a real failed query.
    const locker = await stack.db.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');
      // Its rejection is awaited below, but watched from now on: it may come before that.
      const failed = assert.rejects(auth.authenticate(key), /canceling statement/);
      const pid = await waitFor(
        async () =>
          (
            await stack.db.query<{ pid: number }>(
              `SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%key_hash%'`,
            )
          ).rows[0]?.pid,
        { intervalMs: 20, what: 'the lookup to wait for the lock' },
      );
      await locker.query("UPDATE api_keys SET status = 'revoked' WHERE id = $1", [id]);
      auth.invalidate();
      await stack.db.query('SELECT pg_cancel_backend($1)', [pid]);
      await failed;
      await locker.query('COMMIT');
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }
    assert.deepEqual(await auth.authenticate(key), { valid: false, reason: 'revoked' });
  });

  it('trusts a lookup for the TTL from when its query started, not from when it answered', async () => {
    const held = heldPool();
    const auth = new ApiKeyAuthenticator({ pool: held.pool, ttlMs: 4_000, now: () => clock });
    const { key } = await stack.issueKey();
    const lookup = auth.authenticate(key);
    await held.hasRead;
    clock += 3_000; // a slow answer
    held.release();
    assert.equal((await lookup).valid, true);
    clock += 1_000;
    assert.equal(auth.authenticateCached(key), undefined, 'the row was read 4 s ago: ask again');
  });
});

describe('API key lookups while Postgres does not answer (real Postgres, frozen)', () => {
  let stack: TestStack;
  let app: InProcessApp;

  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-upstream-frozen-1'] });
    app = await startAppInProcess(stack.env, { authTtlMs: 200 });
  });
  after(async () => {
    await app?.stop();
    await stack?.destroy();
  });

  /** A chat completion with `key`: its status and error code, and how long it took. */
  async function chat(key: string) {
    const started = performance.now();
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      // The bug this guards against is a wait without end: fail instead.
      signal: AbortSignal.timeout(20_000),
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: body.error?.code, ms: performance.now() - started };
  }

  it('a key seen before is served from its last lookup, a key never seen gets a 503, each within seconds', async () => {
    const seen = await stack.issueKey();
    const unseen = await stack.issueKey();
    assert.equal((await chat(seen.key)).status, 200);
    await sleep(300); // past the TTL: the next request of the key asks Postgres
    stack.pg.pause();
    try {
      const [served, refused] = await Promise.all([chat(seen.key), chat(unseen.key)]);
      assert.equal(served.status, 200, 'the stale lookup is used');
      assert.deepEqual([refused.status, refused.code], [503, 'upstream_unavailable']);
      // The lookup's own bound (3 s), or the wait for a connection (5 s) when none is idle.
      for (const { ms } of [served, refused]) assert.ok(ms < 8_000, `answered after ${Math.round(ms)} ms`);
    } finally {
      stack.pg.resume();
    }
  });

  it('the last-use write starts no second UPDATE while one is still waiting', async () => {
    let inFlight = 0;
    let most = 0;
    const counted = {
      query: async (...args: Parameters<pg.Pool['query']>) => {
        most = Math.max(most, ++inFlight);
        try {
          return await (stack.db.query as (...a: unknown[]) => Promise<unknown>)(...args);
        } finally {
          inFlight--;
        }
      },
    } as unknown as pg.Pool;
    const recorder = new LastUsedRecorder({ pool: counted, intervalMs: 3_600_000 });
    const [a, b] = [await stack.issueKey(), await stack.issueKey()];
    // A real UPDATE that waits: the table is locked by another session.
    const locker = await stack.db.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');
      recorder.touch(a.id);
      const first = recorder.flush();
      recorder.touch(b.id);
      const second = recorder.flush(); // the timer's next round, while the first still waits
      await sleep(200);
      assert.equal(most, 1, 'one UPDATE at a time');
      await locker.query('COMMIT');
      await Promise.all([first, second]);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }
    await recorder.close();
    const { rows } = await stack.db.query<{ id: number }>(
      'SELECT id FROM api_keys WHERE id = ANY($1) AND last_used_at IS NOT NULL ORDER BY id',
      [[a.id, b.id]],
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      [a.id, b.id],
      'the id touched during the first write is written after it',
    );
  });
});
