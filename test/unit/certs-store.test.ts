import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createFileAtomic, writeFileAtomic } from '../../app/src/certs/atomic.ts';
import { createPlaceholder } from '../../app/src/certs/placeholder.ts';
import { CertStore } from '../../app/src/certs/store.ts';
import { registerTempDir } from '../helpers/processes.ts';

const DOMAIN = 'api.example.com';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'certs-store-'));
  registerTempDir(dir);
  return dir;
}

describe('atomic files', () => {
  it('replaces a file by rename with the mode asked for, leaving no temporary files', async () => {
    const dir = tempDir();
    const path = join(dir, 'privkey.pem');
    writeFileSync(path, 'old');
    const inode = statSync(path).ino;
    await writeFileAtomic(path, 'new', 0o600);
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.notEqual(statSync(path).ino, inode, 'a new file renamed over the old one, not rewritten in place');
    assert.deepEqual(readdirSync(dir), ['privkey.pem']);
  });

  it('creates without replacing: the first writer wins', async () => {
    const dir = tempDir();
    const path = join(dir, 'account-key.pem');
    assert.equal(await createFileAtomic(path, 'first', 0o600), true);
    assert.equal(await createFileAtomic(path, 'second', 0o600), false);
    assert.equal(readFileSync(path, 'utf8'), 'first');
    assert.deepEqual(readdirSync(dir), ['account-key.pem']);
  });
});

describe('CertStore', () => {
  it('installs key (0600) and chain into live/ and mirrors them into last-good/', async () => {
    const store = new CertStore(join(tempDir(), 'certs'));
    await store.prepare();
    assert.deepEqual(await store.readLive(DOMAIN), { kind: 'missing' });
    const pair = createPlaceholder(DOMAIN, new Date());
    await store.install(pair);
    for (const dir of [store.liveDir, store.lastGoodDir]) {
      assert.equal(readFileSync(join(dir, 'fullchain.pem'), 'utf8'), pair.chainPem);
      assert.equal(readFileSync(join(dir, 'privkey.pem'), 'utf8'), pair.keyPem);
      assert.equal(statSync(join(dir, 'privkey.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'fullchain.pem')).mode & 0o777, 0o644);
    }
    assert.equal(statSync(store.accountDir).mode & 0o777, 0o700);
    const live = await store.readLive(DOMAIN);
    assert.equal(live.kind, 'ok');
    assert.equal((await store.readLive('other.example.com')).kind, 'unusable');
  });

  it('reports half a pair as unusable, and an unreadable one as an error, not as unusable', async () => {
    const store = new CertStore(join(tempDir(), 'certs'));
    await store.prepare();
    writeFileSync(join(store.liveDir, 'fullchain.pem'), createPlaceholder(DOMAIN, new Date()).chainPem);
    assert.deepEqual(await store.readLive(DOMAIN), {
      kind: 'unusable',
      reason: 'privkey.pem is missing (fullchain.pem is there)',
    });
    writeFileSync(join(store.liveDir, 'privkey.pem'), 'x');
    chmodSync(join(store.liveDir, 'privkey.pem'), 0o000);
    if (process.getuid?.() !== 0) await assert.rejects(store.readLive(DOMAIN), { code: 'EACCES' });
  });

  it('keeps rejected files with the reason instead of deleting them', async () => {
    const store = new CertStore(join(tempDir(), 'certs'));
    await store.prepare();
    writeFileSync(join(store.liveDir, 'fullchain.pem'), 'garbage');
    writeFileSync(join(store.liveDir, 'privkey.pem'), 'more garbage', { mode: 0o600 });
    const kept = await store.reject(
      'fullchain.pem holds no PEM certificate',
      new Date('2030-01-01T00:00:00Z'),
    );
    assert.match(kept, /rejected\/2030-01-01T00-00-00-000Z$/);
    assert.equal(readFileSync(join(kept, 'fullchain.pem'), 'utf8'), 'garbage');
    assert.equal(readFileSync(join(kept, 'privkey.pem'), 'utf8'), 'more garbage');
    assert.equal(readFileSync(join(kept, 'reason.txt'), 'utf8'), 'fullchain.pem holds no PEM certificate\n');
    assert.equal(readFileSync(join(store.liveDir, 'fullchain.pem'), 'utf8'), 'garbage', 'live/ untouched');
  });
});
