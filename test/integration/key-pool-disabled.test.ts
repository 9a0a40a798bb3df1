// A disabled upstream key leaves that state only by a probe (when the upstream refused it) or by
// an admin. Here, against real Postgres: answers to requests that were under way when an admin
// disabled the key, reported by a replica whose state was read before the change, and a probe
// under way at that moment, all leave the row as the admin left it; and an Azure key's probe,
// on either api-version surface, heals it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { AzureAdapter } from '../../app/src/upstream/azure-adapter.ts';
import type { Outcome } from '../../app/src/upstream/classify.ts';
import { parseDeployments } from '../../app/src/upstream/deployments.ts';
import { Forwarder } from '../../app/src/upstream/forwarder.ts';
import { UpstreamKeyStore } from '../../app/src/upstream/key-store.ts';
import { OpenAiAdapter } from '../../app/src/upstream/openai-adapter.ts';
import { UpstreamPool } from '../../app/src/upstream/pool.ts';
import { KeyProber } from '../../app/src/upstream/prober.ts';
import { waitFor } from '../helpers/processes.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
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

describe('upstream key pool: a disabled Azure key heals by a probe', () => {
  let stack: TestStack;
  let id: number;
  const KEY = 'azure-heal-key';
  before(async () => {
    stack = await startStack();
    const deployments = parseDeployments(['gpt-4o']);
    if ('error' in deployments) throw new Error(deployments.error);
    await stack.seedUpstreamKeys([
      { provider: 'azure', key: KEY, endpoint: stack.fake.azureEndpoint, deployments },
    ]);
    id = (await stack.db.query<{ id: number }>('SELECT id FROM upstream_keys')).rows[0]?.id as number;
  });
  after(async () => {
    await stack?.destroy();
  });

  const status = async () =>
    (await stack.db.query<{ status: string }>('SELECT status FROM upstream_keys WHERE id = $1', [id])).rows[0]
      ?.status;
  const dueNow = () =>
    stack.db.query("UPDATE upstream_keys SET next_probe_at = now() - interval '1 second' WHERE id = $1", [
      id,
    ]);

  // The probe lists the resource's models: /openai/models?api-version= on a dated version,
  // /openai/v1/models on the v1 surface.
  for (const [version, path] of [
    ['2024-10-21', '/openai/models'],
    ['v1', '/openai/v1/models'],
  ] as const) {
    it(`AZURE_API_VERSION=${version}: disabled by a 401, active again once a probe of ${path} succeeds`, async () => {
      const box = new SecretBox({ current: stack.encryptionKey });
      const adapters = { azure: new AzureAdapter(version) };
      const store = new UpstreamKeyStore({ pool: stack.db, box });
      const pool = new UpstreamPool({ store, pool: stack.db, adapters, refreshMs: 60_000 });
      await pool.refresh();
      const forwarder = new Forwarder({ pool });
      const prober = new KeyProber({
        db: stack.db,
        pool,
        adapters,
        dispatcher: forwarder.dispatcher,
        intervalMs: 60_000,
      });
      try {
        stack.fake.setKeyBehavior(KEY, 'invalid_key');
        await assert.rejects(
          forwarder.forward({
            operation: 'chat/completions',
            model: 'gpt-4o',
            body: Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'),
            method: 'POST',
            accept: 'application/json',
            buffer: true,
            signal: new AbortController().signal,
          }),
          { code: 'upstream_unavailable' },
        );
        await pool.refresh(); // waits for the state write
        assert.equal(await status(), 'disabled');

        // Still refused: the probe leaves it disabled.
        stack.fake.clearRequests();
        await dueNow();
        await prober.tick();
        assert.equal(await status(), 'disabled');
        const probe = stack.fake.requests.at(-1);
        assert.deepEqual([probe?.method, probe?.path, probe?.key, probe?.status], ['GET', path, KEY, 401]);
        assert.equal(probe?.query['api-version'], version === 'v1' ? undefined : version);

        stack.fake.clearKeyBehaviors();
        await dueNow();
        await prober.tick();
        assert.equal(await status(), 'active');
        assert.equal(stack.fake.requests.at(-1)?.status, 200);
      } finally {
        stack.fake.clearKeyBehaviors();
        await pool.stop();
        await forwarder.close();
        await stack.db.query(
          "UPDATE upstream_keys SET status = 'active', failure_count = 0, last_error = NULL WHERE id = $1",
          [id],
        );
      }
    });
  }
});
