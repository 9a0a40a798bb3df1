import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type pg from 'pg';
import { connectWithRetry, secondsOption, UsageError, waitOption } from '../../scripts/cli.ts';

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

describe('secondsOption', () => {
  it('takes positive seconds, fractions too', () => {
    assert.equal(secondsOption('600', '--check-interval'), 600);
    assert.equal(secondsOption('0.5', '--retry-min'), 0.5);
  });

  // Infinity or 1e10 seconds would overflow Node's timer, which then fires at once: a daemon
  // told to check every 300 years would check in a tight loop instead.
  for (const raw of [undefined, '', '0', '-5', 'x', 'Infinity', '1e10', '2147484']) {
    it(`refuses ${JSON.stringify(raw)} as a usage error naming the option`, () => {
      assert.throws(
        () => secondsOption(raw, '--check-interval'),
        (err: Error) => {
          assert.ok(err instanceof UsageError);
          assert.match(err.message, /--check-interval/);
          return true;
        },
      );
    });
  }
});
