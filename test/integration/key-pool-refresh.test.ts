// The pool's re-read of the shared state must not replace what this instance learnt meanwhile:
// against real Postgres, with this instance's state writes held back to order them exactly.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { UpstreamKeyStore } from '../../app/src/upstream/key-store.ts';
import { UpstreamPool } from '../../app/src/upstream/pool.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('upstream key pool: refresh', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-refresh-a', 'sk-refresh-b'] });
  });
  after(async () => {
    await stack?.destroy();
  });

  it('an outcome reported while the refresh waits for earlier writes is not read back stale', async () => {
    // Writes of a key wait for its gate; the table is read without one.
    const gates = new Map<number, ReturnType<typeof gate>>();
    const writes = {
      async query(sql: string, params: unknown[]) {
        await gates.get(params[0] as number)?.opened;
        return stack.db.query(sql, params);
      },
    } as unknown as pg.Pool;
    const store = new UpstreamKeyStore({
      pool: stack.db,
      box: new SecretBox({ current: stack.encryptionKey }),
    });
    const pool = new UpstreamPool({ store, pool: writes, adapters: {}, refreshMs: 60_000 });
    await pool.refresh();
    const [a, b] = pool.states.map((s) => s.key.id) as [number, number];
    gates.set(a, gate());
    gates.set(b, gate());
    try {
      pool.report(a, { kind: 'upstream_failure', reason: '500 server_error', timeout: false });
      const refreshed = pool.refresh(); // waits for a's write
      pool.report(b, { kind: 'key_cooling', retryAfterMs: 60_000, reason: '429 rate_limit_exceeded' });
      gates.get(a)?.open(); // the table is read now, before b's write lands
      await refreshed;
      assert.equal(pool.states.find((s) => s.key.id === a)?.failureCount, 1);
      assert.equal(pool.states.find((s) => s.key.id === b)?.status, 'cooling', 'b read back stale');
    } finally {
      for (const g of gates.values()) g.open();
      await pool.stop();
    }
    await pool.refresh();
    assert.equal(pool.states.find((s) => s.key.id === b)?.status, 'cooling');
  });
});
