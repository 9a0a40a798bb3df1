import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  apiKeyDigest,
  displayPrefix,
  hashApiKey,
  issueApiKey,
  looksLikeApiKey,
} from '../../app/src/crypto/api-keys.ts';
import { newId } from '../../app/src/crypto/ids.ts';
import { DecryptionError, SecretBox } from '../../app/src/crypto/secret-box.ts';

const hex = () => randomBytes(32).toString('hex');

describe('SecretBox', () => {
  it('seals with a fresh 96-bit IV each time and opens again', () => {
    const box = new SecretBox({ current: hex() });
    const a = box.seal('sk-upstream-canary');
    const b = box.seal('sk-upstream-canary');
    assert.equal(a.iv.length, 12);
    assert.equal(a.authTag.length, 16);
    assert.notDeepEqual(a.iv, b.iv);
    assert.notDeepEqual(a.ciphertext, b.ciphertext);
    assert.ok(!a.ciphertext.toString('latin1').includes('canary'));
    assert.equal(box.open(a), 'sk-upstream-canary');
    assert.equal(a.keyId, box.currentKeyId);
  });

  it('opens rows sealed under a key now listed in ENCRYPTION_KEY_PREVIOUS', () => {
    const oldKey = hex();
    const sealed = new SecretBox({ current: oldKey }).seal('old-secret');
    const rotated = new SecretBox({ current: hex(), previous: [oldKey] });
    assert.equal(rotated.open(sealed), 'old-secret');
    assert.notEqual(rotated.currentKeyId, sealed.keyId);
  });

  it('says clearly which key is missing when the sealing key is unknown', () => {
    const sealed = new SecretBox({ current: hex() }).seal('x');
    const other = new SecretBox({ current: hex() });
    assert.throws(
      () => other.open(sealed),
      (err: unknown) =>
        err instanceof DecryptionError &&
        err.message.includes(sealed.keyId) &&
        /neither ENCRYPTION_KEY nor listed in ENCRYPTION_KEY_PREVIOUS/.test(err.message),
    );
  });

  it('refuses a tampered ciphertext with a clear message', () => {
    const box = new SecretBox({ current: hex() });
    const sealed = box.seal('secret');
    sealed.ciphertext[0] = (sealed.ciphertext[0] ?? 0) ^ 1;
    assert.throws(() => box.open(sealed), /authentication failed.*altered or that encryption key/);
  });

  it('fingerprints deterministically per key, differently across keys', () => {
    const k1 = hex();
    const box = new SecretBox({ current: k1 });
    assert.deepEqual(box.fingerprint('a'), box.fingerprint('a'));
    assert.notDeepEqual(box.fingerprint('a'), box.fingerprint('b'));
    const rotated = new SecretBox({ current: hex(), previous: [k1] });
    assert.deepEqual(rotated.fingerprint('a', box.currentKeyId), box.fingerprint('a'));
    assert.notDeepEqual(rotated.fingerprint('a'), box.fingerprint('a'));
  });
});

describe('proxy API keys', () => {
  it('are 256-bit, prefixed, and stored as SHA-256 only', () => {
    const issued = issueApiKey();
    assert.match(issued.key, /^sk-gp-[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(issued.key.slice(6), 'base64url').length, 32);
    assert.deepEqual(issued.hash, hashApiKey(issued.key));
    assert.equal(issued.hash.length, 32);
    assert.equal(
      apiKeyDigest(issued.key),
      issued.hash.toString('hex'),
      'the per-request digest is the stored hash',
    );
    assert.equal(issued.displayPrefix, displayPrefix(issued.key));
    assert.ok(issued.key.startsWith(issued.displayPrefix.slice(0, -1)));
    assert.ok(looksLikeApiKey(issued.key));
    assert.ok(!looksLikeApiKey('sk-proj-abc'));
    assert.notEqual(issueApiKey().key, issued.key);
  });
});

describe('newId', () => {
  it('makes version-7 UUIDs as 32 hex digits, unique across refills of its pool', () => {
    const ids = Array.from({ length: 2_000 }, () => newId());
    for (const id of ids) assert.match(id, /^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('starts each id with the time in milliseconds, so ids made later sort later', async () => {
    const before = Date.now();
    const first = newId();
    await new Promise((r) => setTimeout(r, 5));
    const second = newId();
    const after = Date.now();
    const ms = (id: string) => Number.parseInt(id.slice(0, 12), 16);
    assert.ok(ms(first) >= before && ms(second) <= after, 'the prefix is the clock');
    assert.ok(ms(second) > ms(first));
    assert.ok(second > first, 'as text too, as Postgres orders uuids');
    // The rest stays random: two ids of the same millisecond still differ in their last 74 bits.
    const same = Array.from({ length: 50 }, () => newId()).filter((id) => ms(id) === ms(second));
    assert.equal(new Set(same.map((id) => id.slice(13))).size, same.length);
  });
});
