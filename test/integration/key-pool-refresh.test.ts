// The pool's re-read of the shared state must not replace what this instance learnt meanwhile:
// against real Postgres, with this instance's state writes held back to order them exactly. And
// the store's re-read keeps no opened secret of a row that is gone or was sealed again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { insertSealedKey } from '../../app/src/upstream/key-rows.ts';
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

  it('forgets the opened secret of a deleted key, and the old version of a re-sealed one', async () => {
    const box = new SecretBox({ current: stack.encryptionKey });
    const store = new UpstreamKeyStore({ pool: stack.db, box });
    const before = (await store.load()).length;
    assert.equal(store.openedCount, before);
    const id = await insertSealedKey(stack.db, box, {
      provider: 'openai',
      key: 'sk-refresh-deleted',
      source: 'admin',
      endpoint: null,
      deployments: null,
    });
    await store.load();
    assert.equal(store.openedCount, before + 1);
    await stack.db.query('DELETE FROM upstream_keys WHERE id = $1', [id]);
    await store.load();
    assert.equal(store.openedCount, before, 'the deleted key is still held in plaintext');

    // Sealed again (as rotate-encryption-key does): the new version is opened, the old one dropped.
    const [first] = await store.load();
    const sealed = box.seal(first?.key.secret as string);
    await stack.db.query(
      'UPDATE upstream_keys SET key_ciphertext = $2, key_iv = $3, key_auth_tag = $4 WHERE id = $1',
      [first?.key.id, sealed.ciphertext, sealed.iv, sealed.authTag],
    );
    assert.equal((await store.load())[0]?.key.secret, first?.key.secret);
    assert.equal(store.openedCount, before);
  });
});
