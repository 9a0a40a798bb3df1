import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type pg from 'pg';
import { connectWithRetry, UsageError, waitOption } from '../../scripts/cli.ts';

/**
 * A pool whose database refuses the first `failures` connections, counting the attempts. It
 * connects in the end so that a loop that never gives up fails the test instead of hanging it.
 */
function refusing(failures: number) {
  const pool = {
    attempts: 0,
    async connect(): Promise<pg.PoolClient> {
      pool.attempts++;
      if (pool.attempts <= failures) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return {} as pg.PoolClient;
    },
  };
  return pool;
}

describe('connectWithRetry', () => {
  // A NaN deadline is never passed: the old loop retried for as long as the database was down.
  for (const wait of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
    it(`refuses a wait of ${wait} at once instead of retrying until it connects`, async () => {
      const pool = refusing(2);
      await assert.rejects(connectWithRetry(pool as unknown as pg.Pool, wait), RangeError);
      assert.equal(pool.attempts, 0);
    });
  }

  it('tries once with a wait of 0 and reports the connection error', async () => {
    const pool = refusing(2);
    await assert.rejects(connectWithRetry(pool as unknown as pg.Pool, 0), /ECONNREFUSED/);
    assert.equal(pool.attempts, 1);
  });
});

describe('waitOption', () => {
  it('takes whole seconds, 0 or more', () => {
    assert.equal(waitOption('0'), 0);
    assert.equal(waitOption('60'), 60);
  });

  for (const raw of ['2m', '', ' 5', '-1', '1.5', '1e3', 'Infinity', '99999999999999999999']) {
    it(`refuses ${JSON.stringify(raw)} as a usage error`, () => {
      assert.throws(() => waitOption(raw), UsageError);
    });
  }
});
