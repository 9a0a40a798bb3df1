import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configureAcmeHttp } from '../../app/src/certs/acme-http.ts';
import { emptyLedger, recordSuccess, writeLedger } from '../../app/src/certs/ledger.ts';
import { DirLock } from '../../app/src/certs/lock.ts';
import { CertManager } from '../../app/src/certs/manager.ts';
import { CertStore } from '../../app/src/certs/store.ts';
import type { Config } from '../../app/src/config/index.ts';
import { createLogger } from '../../app/src/log/logger.ts';
import { caIssuedPair, certdDirs, type LogLine } from '../helpers/pebble.ts';
import { freePort } from '../helpers/processes.ts';

const DOMAIN = 'api.example.com';
const DAY = 86_400_000;

async function setup(directory: Config['acme']['directory'], now = () => new Date()) {
  const { certDir, webroot } = certdDirs();
  const lines: LogLine[] = [];
  const logger = createLogger({ level: 'info', promptBody: false }, 'certd', {
    write: (line: string) => lines.push(JSON.parse(line) as LogLine),
  });
  const config: Config['acme'] = {
    domain: DOMAIN,
    email: undefined,
    directory,
    caFile: undefined,
    certDir,
    webroot,
    renewFraction: 0.33,
  };
  const store = new CertStore(certDir);
  const agent = directory.kind === 'acme' ? configureAcmeHttp(undefined, logger) : undefined;
  const manager = new CertManager({
    config,
    store,
    logger,
    backoff: { minMs: 60_000, maxMs: 3_600_000 },
    agent,
    now,
  });
  await store.prepare();
  return { store, manager, lines, certDir };
}

const files = (dir: string) =>
  ['fullchain.pem', 'privkey.pem'].map((f) => readFileSync(join(dir, f), 'utf8'));

describe('CertManager, self-signed', () => {
  it('installs a placeholder when there is nothing, and renews it by the fraction rule', async () => {
    let clock = new Date();
    const { manager, lines } = await setup({ kind: 'self-signed' }, () => clock);
    const first = await manager.reconcile();
    assert.equal(first.order, 'not-needed');
    assert.ok(first.live.kind === 'ok' && first.live.info.selfSigned);
    assert.ok(lines.some((l) => l.msg === 'no certificate yet: installed a self-signed placeholder'));
    const again = await manager.reconcile();
    assert.ok(again.live.kind === 'ok' && first.live.kind === 'ok');
    assert.equal(again.live.info.serial, first.live.info.serial, 'kept while not due');
    clock = new Date(clock.getTime() + 61 * DAY);
    const renewed = await manager.reconcile();
    assert.ok(renewed.live.kind === 'ok' && first.live.kind === 'ok');
    assert.notEqual(renewed.live.info.serial, first.live.info.serial);
  });
});

describe('CertManager and the CERT_DIR lock', () => {
  it('installs nothing once another process has taken the lock over', async () => {
    const { store, manager, certDir } = await setup({ kind: 'self-signed' });
    const lockPath = join(certDir, '.lock');
    const taken = await new DirLock(lockPath).tryAcquire('certd');
    assert.ok('acquired' in taken);
    // Another process judged ours stale, broke it and holds it now.
    writeFileSync(
      lockPath,
      JSON.stringify({ pid: 1, hostname: 'elsewhere', token: 'theirs', purpose: 'certd', since: '' }),
    );
    const result = await manager.reconcile({ lock: taken.acquired });
    assert.equal(result.order, 'failed');
    assert.equal(result.error?.reason, 'storage');
    assert.match(String(result.why), /another process took over the CERT_DIR lock/);
    assert.equal((await store.readLive(DOMAIN)).kind, 'missing', 'no placeholder written');
    assert.equal(taken.acquired.lost, true);
    await taken.acquired.release();
    assert.equal(JSON.parse(readFileSync(lockPath, 'utf8')).token, 'theirs', 'theirs is left alone');
  });
});

describe('CertManager, a corrupt or mismatched live/', () => {
  for (const [fault, corrupt] of [
    ['corrupt', (dir: string) => writeFileSync(join(dir, 'fullchain.pem'), 'garbage')],
    [
      'mismatched',
      (dir: string) => writeFileSync(join(dir, 'privkey.pem'), caIssuedPair(DOMAIN, window()).keyPem),
    ],
  ] as const) {
    it(`keeps the ${fault} files in rejected/ and puts the last good pair back`, async () => {
      const { store, manager, lines, certDir } = await setup({
        kind: 'acme',
        url: 'https://127.0.0.1:9/dir',
      });
      const good = caIssuedPair(DOMAIN, window());
      await store.install(good);
      corrupt(store.liveDir);
      const bad = files(store.liveDir);
      const result = await manager.reconcile();
      assert.equal(result.order, 'not-needed');
      assert.deepEqual(files(store.liveDir), [good.chainPem, good.keyPem]);
      const [kept] = readdirSync(join(certDir, 'rejected'));
      assert.deepEqual(files(join(certDir, 'rejected', kept ?? '')), bad, 'nothing deleted');
      const error = lines.find((l) => l.level === 'error');
      assert.match(String(error?.msg), /^the certificate in live\/ is unusable: /);
      assert.ok(
        lines.some((l) => l.msg === 'put back the last good certificate' && l.serial === good.serial),
      );
    });
  }

  it('installs a placeholder when there is no good pair to put back', async () => {
    const { store, manager } = await setup({ kind: 'self-signed' });
    writeFileSync(join(store.liveDir, 'fullchain.pem'), 'garbage');
    writeFileSync(join(store.liveDir, 'privkey.pem'), 'garbage');
    const result = await manager.reconcile();
    assert.ok(result.live.kind === 'ok' && result.live.info.selfSigned);
  });
});

const STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/** The order record as certd leaves it after installing certificate `serial` from `directoryUrl`. */
async function recordIssuer(manager: CertManager, serial: string, directoryUrl: string) {
  const ledger = recordSuccess(emptyLedger(), DOMAIN, new Date(), { serial, directoryUrl });
  await writeLedger(manager.ledgerPath, ledger, new Date());
}

function window(daysLeft = 60) {
  const now = Date.now();
  return { notBefore: new Date(now - (90 - daysLeft) * DAY), notAfter: new Date(now + daysLeft * DAY) };
}

describe('CertManager, ACME', () => {
  it('orders nothing while the certificate in place is not due', async () => {
    const url = `https://127.0.0.1:${await freePort()}/dir`;
    const { store, manager } = await setup({ kind: 'acme', url });
    const pair = caIssuedPair(DOMAIN, window(60));
    await store.install(pair);
    await recordIssuer(manager, pair.serial, url);
    assert.equal(await manager.needsWork(await manager.readLive()), false);
    assert.equal((await manager.reconcile()).order, 'not-needed');
  });

  it('replaces a certificate another ACME directory issued at once, not when it is due', async () => {
    const url = `https://127.0.0.1:${await freePort()}/dir`;
    const { store, manager, lines } = await setup({ kind: 'acme', url });
    const staging = caIssuedPair(DOMAIN, window(60));
    await store.install(staging);
    await recordIssuer(manager, staging.serial, STAGING);
    assert.equal(await manager.needsWork(await manager.readLive()), true);
    const result = await manager.reconcile();
    assert.equal(result.order, 'failed', 'it orders (and finds no CA)');
    assert.equal(result.error?.reason, 'unreachable');
    assert.deepEqual(files(store.liveDir), [staging.chainPem, staging.keyPem], 'kept until replaced');
    const switched = lines.find((l) => l.issuedBy === STAGING);
    assert.equal(
      switched?.msg,
      'the certificate in live/ was issued by another ACME directory; replacing it',
    );
    assert.equal(switched?.directory, url);
  });

  it('keeps a certificate without a record of its directory until it is due, and says so once', async () => {
    const url = `https://127.0.0.1:${await freePort()}/dir`;
    const { store, manager, lines } = await setup({ kind: 'acme', url });
    const pair = caIssuedPair(DOMAIN, window(60));
    await store.install(pair);
    // A record for another certificate (one installed by hand since) says nothing about this one.
    await recordIssuer(manager, 'ABCDEF', STAGING);
    assert.equal(await manager.needsWork(await manager.readLive()), false);
    assert.equal((await manager.reconcile()).order, 'not-needed');
    const unknown = lines.filter((l) => /^no record of the ACME directory/.test(String(l.msg)));
    assert.equal(unknown.length, 1, JSON.stringify(lines));
    assert.equal(unknown[0]?.serial, pair.serial);
  });

  it('does not let times written by a clock that ran ahead hold renewal back for longer than a week', async () => {
    let clock = new Date();
    const url = `https://127.0.0.1:${await freePort()}/dir`;
    const { store, manager } = await setup({ kind: 'acme', url }, () => clock);
    await store.install(caIssuedPair(DOMAIN, window(20)));
    const ahead = new Date(clock.getTime() + 365 * DAY).toISOString();
    const failed = { at: ahead, domain: DOMAIN, ok: false, reason: 'rate_limited' };
    writeFileSync(
      manager.ledgerPath,
      JSON.stringify({
        attempts: [failed],
        consecutiveFailures: 1,
        backoffUntil: ahead,
        caRetryAfter: ahead,
      }),
    );
    const first = await manager.reconcile();
    assert.equal(first.order, 'waiting');
    assert.equal(first.until?.getTime(), clock.getTime() + 7 * DAY, 'a Retry-After lasts a week at most');
    clock = new Date(clock.getTime() + 7 * DAY + 1_000);
    const later = await manager.reconcile();
    assert.equal(later.order, 'failed', 'a week on, certd orders again (and finds no CA)');
    assert.equal(later.error?.reason, 'unreachable');
  });

  it('keeps the certificate in place when the CA is unreachable, then backs off', async () => {
    const { store, manager, lines } = await setup({
      kind: 'acme',
      url: `https://127.0.0.1:${await freePort()}/dir`,
    });
    const old = caIssuedPair(DOMAIN, window(5));
    await store.install(old);
    const result = await manager.reconcile();
    assert.equal(result.order, 'failed');
    assert.equal(result.error?.reason, 'unreachable');
    assert.match(
      String(result.why),
      /cannot reach the CA at https:\/\/127\.0\.0\.1:\d+\/dir: .*ECONNREFUSED/,
    );
    assert.deepEqual(files(store.liveDir), [old.chainPem, old.keyPem]);
    const logged = lines.find((l) => l.level === 'error');
    assert.match(
      String(logged?.msg),
      /^certificate order failed \(unreachable\): .*; keeping the certificate in place$/,
    );
    assert.deepEqual(logged?.keeping, {
      serial: old.serial,
      notAfter: result.live.kind === 'ok' ? result.live.info.notAfter.toISOString() : '',
      selfSigned: false,
    });
    const ledger = await manager.readLedger();
    assert.equal(ledger.consecutiveFailures, 1);
    const again = await manager.reconcile();
    assert.equal(again.order, 'waiting');
    assert.equal(again.until?.toISOString(), ledger.backoffUntil);
    // issue-cert, started after that failure, may try once more; the CA's Retry-After would still bind it.
    assert.equal((await manager.reconcile({ backoffFrom: new Date() })).order, 'failed');
  });
});
