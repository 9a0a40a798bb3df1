import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { ApiKeyAuthenticator } from '../../app/src/auth/api-key-auth.ts';
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
});
