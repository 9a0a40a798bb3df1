// A disabled upstream key leaves that state only by a probe (when the upstream refused it) or by
// an admin. Here, against real Postgres: answers to requests that were under way when an admin
// disabled the key, reported by a replica whose state was read before the change, and a probe
// under way at that moment, all leave the row as the admin left it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import type { Outcome } from '../../app/src/upstream/classify.ts';
import { UpstreamKeyStore } from '../../app/src/upstream/key-store.ts';
import { OpenAiAdapter } from '../../app/src/upstream/openai-adapter.ts';
import { UpstreamPool } from '../../app/src/upstream/pool.ts';
import { KeyProber } from '../../app/src/upstream/prober.ts';
import { waitFor } from '../helpers/processes.ts';
import { type AdminFixture, startAdminFixture, UPSTREAM_KEY } from './admin-fixture.ts';

const ROW = `SELECT status, failure_count, last_error, cooldown_until, updated_at,
                    next_probe_at = 'infinity' AS never_probed
             FROM upstream_keys WHERE id = $1`;

describe('upstream key pool: a key an admin disabled stays disabled', () => {
  let f: AdminFixture;
  let id: number;
  let box: SecretBox;
  before(async () => {
    f = await startAdminFixture();
    box = new SecretBox({ current: f.stack.encryptionKey });
    const { rows } = await f.stack.db.query<{ id: number }>('SELECT id FROM upstream_keys');
    id = rows[0]?.id as number;
  });
  after(async () => {
    await f?.close();
  });

  const setStatus = async (status: 'active' | 'disabled') => {
    const r = await f.call('PATCH', `/upstream-keys/${id}`, { body: { status } });
    assert.equal(r.status, 200, r.text);
  };
  const row = async () => (await f.stack.db.query(ROW, [id])).rows[0];

  /** Another replica: its own pool over the same table, its state read now (soon stale). */
  async function replica(): Promise<UpstreamPool> {
    const store = new UpstreamKeyStore({ pool: f.stack.db, box });
    const pool = new UpstreamPool({ store, pool: f.stack.db, adapters: {}, refreshMs: 60_000 });
    await pool.refresh();
    return pool;
  }

  const failure: Outcome = { kind: 'upstream_failure', reason: '500 server_error', timeout: false };
  const cases: Array<[string, Outcome, number]> = [
    ['a success', { kind: 'success' }, 2],
    ['a 429', { kind: 'key_cooling', retryAfterMs: 1_000, reason: '429 rate_limit_exceeded' }, 0],
    ['a 401', { kind: 'key_disabled', reason: '401 invalid_api_key' }, 0],
    ['a 5xx under the threshold', failure, 0],
    ['a 5xx over the threshold', failure, 2],
  ];
  for (const [name, outcome, failuresBefore] of cases) {
    it(`${name} that arrives after the admin's disable changes nothing`, async () => {
      await setStatus('active');
      // Earlier failures, so that a success or one more failure would have something to write.
      await f.stack.db.query(
        "UPDATE upstream_keys SET failure_count = $2, last_error = '500' WHERE id = $1",
        [id, failuresBefore],
      );
      const stale = await replica();
      assert.equal(stale.states[0]?.status, 'active');
      await setStatus('disabled');
      const disabled = await row();
      assert.equal(disabled.never_probed, true);

      stale.report(id, outcome);
      await stale.stop(); // waits for its writes
      assert.deepEqual(await row(), disabled);
    });
  }

  it('a probe under way when the admin disables the key does not heal it', async () => {
    await setStatus('active');
    // Disabled by the upstream and due for a probe, which will be slow to answer.
    await f.stack.db.query(
      `UPDATE upstream_keys SET status = 'disabled', last_error = '401 invalid_api_key',
         next_probe_at = now() - interval '1 second' WHERE id = $1`,
      [id],
    );
    f.stack.fake.clearRequests();
    f.stack.fake.setKeyBehavior(UPSTREAM_KEY, { kind: 'slow_first_byte', ms: 800 }, { times: 1 });
    const dispatcher = new Agent();
    const prober = new KeyProber({
      db: f.stack.db,
      pool: await replica(),
      adapters: { openai: new OpenAiAdapter(f.stack.fake.openaiBaseUrl) },
      dispatcher,
      intervalMs: 60_000,
    });
    try {
      const tick = prober.tick();
      await waitFor(() => f.stack.fake.requests.some((r) => r.endpoint === 'models'), {
        timeoutMs: 5_000,
        what: 'the probe reaching the upstream',
      });
      await setStatus('disabled');
      await tick;
      const after = await row();
      assert.equal(after.status, 'disabled');
      assert.equal(after.never_probed, true);
    } finally {
      f.stack.fake.clearKeyBehaviors();
      await dispatcher.close();
    }
  });
});
