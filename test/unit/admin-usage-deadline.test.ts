// /admin/v1/usage runs two report queries back to back: together they answer within one bound
// (REPORT_TIMEOUT_MS, just below nginx's 340 s), not one each.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { usageRoutes } from '../../app/src/admin/usage.ts';
import { REPORT_TIMEOUT_MS } from '../../app/src/db/pool.ts';

describe('GET /admin/v1/usage', () => {
  it('bounds its queries by one shared deadline', async () => {
    let started: number | undefined;
    const ends: number[] = [];
    // Each query takes 200 ms. Its bound says when, counted from the first query, it would be
    // given up at the latest.
    const db = {
      async query(config: pg.QueryConfig & { query_timeout?: number }) {
        const now = performance.now();
        started ??= now;
        ends.push(now - started + (config.query_timeout ?? Number.POSITIVE_INFINITY));
        await sleep(200);
        return { rows: [] };
      },
    };
    const route = usageRoutes.find((r) => r.path === '/usage');
    await route?.handle({
      query: { group_by: 'model' },
      deps: { db },
    } as unknown as Parameters<NonNullable<typeof route>['handle']>[0]);
    assert.equal(ends.length, 2);
    // A few ms of slack: a bound is computed a moment before the query reaches this fake.
    for (const end of ends) {
      assert.ok(end <= REPORT_TIMEOUT_MS + 20, `given up ${Math.round(end)} ms after the start`);
    }
  });
});
