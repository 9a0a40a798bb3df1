import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SecretBox } from '../../app/src/crypto/secret-box.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { runScript } from '../helpers/scripts.ts';

const hex = () => randomBytes(32).toString('hex');

describe('rotate-encryption-key', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.destroy();
  });

  it('re-seals every key under the new key; afterwards only the new key is needed', async () => {
    const { name } = await pg.createDatabase();
    const base = pg.env(name) as unknown as Record<string, string>;
    const [k1, k2, k3] = [hex(), hex(), hex()];
    const keys = ['sk-rot-a', 'sk-rot-b', 'sk-rot-c'].map((k) => `${k}-${randomBytes(8).toString('hex')}`);
    assert.equal((await runScript('init-db', [], base)).code, 0);
    // Keys sealed under two generations of encryption keys.
    await runScript('init-upstream-keys', [], {
      ...base,
      ENCRYPTION_KEY: k1,
      OPENAI_API_KEYS: keys.slice(0, 2).join(','),
    });
    await runScript('init-upstream-keys', [], {
      ...base,
      ENCRYPTION_KEY: k2,
      ENCRYPTION_KEY_PREVIOUS: k1,
      OPENAI_API_KEYS: keys.join(','),
    });

    const missing = await runScript('rotate-encryption-key', [], {
      ...base,
      ENCRYPTION_KEY: k3,
      ENCRYPTION_KEY_PREVIOUS: k2,
    });
    assert.equal(missing.code, 1, 'a row sealed by a key not given stops the rotation');
    assert.match(missing.stderr, /ENCRYPTION_KEY_PREVIOUS/);

    const r = await runScript('rotate-encryption-key', ['--json'], {
      ...base,
      ENCRYPTION_KEY: k3,
      ENCRYPTION_KEY_PREVIOUS: `${k2},${k1}`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { reencrypted: 3, unchanged: 0 });
    for (const k of [...keys, k1, k2, k3]) assert.ok(!(r.stdout + r.stderr).includes(k));

    const client = await pg.connect(name);
    try {
      const { rows } = await client.query(
        'SELECT key_ciphertext, key_iv, key_auth_tag, encryption_key_id, fingerprint FROM upstream_keys ORDER BY id',
      );
      const onlyNew = new SecretBox({ current: k3 });
      const opened = rows.map((row) =>
        onlyNew.open({
          ciphertext: row.key_ciphertext,
          iv: row.key_iv,
          authTag: row.key_auth_tag,
          keyId: row.encryption_key_id,
        }),
      );
      assert.deepEqual(opened, keys);
      assert.deepEqual(
        rows.map((row) => row.fingerprint),
        keys.map((k) => onlyNew.fingerprint(k)),
      );
    } finally {
      await client.end();
    }
    // The env sync now matches every key under the new key alone.
    const sync = await runScript('init-upstream-keys', [], {
      ...base,
      ENCRYPTION_KEY: k3,
      OPENAI_API_KEYS: keys.join(','),
    });
    assert.equal(sync.stdout, 'added=0 reactivated=0 retired=0 unchanged=3\n');
    const again = await runScript('rotate-encryption-key', [], { ...base, ENCRYPTION_KEY: k3 });
    assert.equal(again.stdout, 'reencrypted=0 unchanged=3\n');
  });

  // docs/runbook.md, Restore: a dump taken before a rotation holds rows sealed under the older key.
  it('restoring a dump older than a rotation: the older key as previous, then a re-seal under the current key', async () => {
    const { name } = await pg.createDatabase();
    const base = pg.env(name) as unknown as Record<string, string>;
    const [older, current, next] = [hex(), hex(), hex()];
    const keys = ['sk-restore-a', 'sk-restore-b'].map((k) => `${k}-${randomBytes(8).toString('hex')}`);
    const seed = { OPENAI_API_KEYS: keys.join(',') };
    assert.equal((await runScript('init-db', [], base)).code, 0);
    // The restored database: every row sealed under the key the stack had when the dump was taken.
    await runScript('init-upstream-keys', [], { ...base, ...seed, ENCRYPTION_KEY: older });
    const client = await pg.connect(name);
    try {
      const rows = async () => (await client.query('SELECT * FROM upstream_keys ORDER BY id')).rows;
      const restored = await rows();

      // Not this way: a fresh rotation's step 1 puts the current key in encryptionKeyPrevious, in
      // place of the older one. Neither the re-seal nor the deploy hook can open the rows; both
      // stop with the rows as they were.
      const rotatedAgain = { ...base, ENCRYPTION_KEY: next, ENCRYPTION_KEY_PREVIOUS: current };
      const reseal = await runScript('rotate-encryption-key', [], rotatedAgain);
      assert.equal(reseal.code, 1);
      assert.match(reseal.stderr, /ENCRYPTION_KEY_PREVIOUS/);
      const hook = await runScript('init-upstream-keys', [], { ...rotatedAgain, ...seed });
      assert.equal(hook.code, 1);
      assert.match(hook.stderr, /add that key to ENCRYPTION_KEY_PREVIOUS/);
      assert.deepEqual(await rows(), restored);

      // The runbook's way: the stack's key stays, the older one is added as previous (pulumi up
      // runs the hook with both), the rotation's step 2 re-seals with those two keys, and step 3
      // drops the older one (pulumi up runs the hook with the current key alone).
      const both = { ...base, ENCRYPTION_KEY: current, ENCRYPTION_KEY_PREVIOUS: older };
      assert.equal((await runScript('init-upstream-keys', [], { ...both, ...seed })).code, 0);
      const r = await runScript('rotate-encryption-key', [], both);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'reencrypted=2 unchanged=0\n');
      const currentOnly = new SecretBox({ current });
      const opened = (await rows()).map((row) =>
        currentOnly.open({
          ciphertext: row.key_ciphertext,
          iv: row.key_iv,
          authTag: row.key_auth_tag,
          keyId: row.encryption_key_id,
        }),
      );
      assert.deepEqual(opened, keys);
      const dropped = await runScript('init-upstream-keys', [], {
        ...base,
        ...seed,
        ENCRYPTION_KEY: current,
      });
      assert.equal(dropped.stdout, 'added=0 reactivated=0 retired=0 unchanged=2\n');
    } finally {
      await client.end();
    }
  });
});
