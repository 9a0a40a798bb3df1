import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import {
  type CertdProcess,
  caIssuedPair,
  orderFailures,
  type Scene,
  sameFilesNow,
  servedSerial,
  snapshotFiles,
  startCertd,
  startScene,
} from '../helpers/pebble.ts';
import { waitFor } from '../helpers/processes.ts';

// Faults on the appliance's side: a challenge nginx does not serve, and certificate files on
// disk that are corrupt or do not match. Each leaves the old certificate serving.
const TICKS = ['--check-interval', '2', '--retry-min', '1'];

describe('certd with faults on its own side', { timeout: 120_000 }, () => {
  let scene: Scene | undefined;
  let certd: CertdProcess | undefined;

  afterEach(async () => {
    await certd?.stop();
    await scene?.stop();
    certd = scene = undefined;
  });

  it('challenge failure (token not served): clear log lines, backoff, the old certificate keeps serving', async () => {
    scene = await startScene();
    const current = scene;
    const before = snapshotFiles(current.certDir);
    // certd writes its tokens where nginx does not look.
    const elsewhere = join(current.certDir, '..', 'not-served');
    mkdirSync(elsewhere);
    certd = await startCertd({ ...current.env, ACME_WEBROOT: elsewhere }, TICKS);
    const proc = certd;
    await waitFor(() => orderFailures(proc).length >= 2, {
      timeoutMs: 30_000,
      what: 'two failed challenges',
    });
    const [first, second] = orderFailures(proc);
    assert.equal(first?.reason, 'challenge');
    assert.match(
      String(first?.msg),
      /^certificate order failed \(challenge\): http-01 challenge for api\.gpt-proxy\.test failed \(\w+\): .*returned 404; keeping the certificate in place$/,
    );
    assert.match(String(first?.hint), /acme-challenge/);
    assert.ok(
      Date.parse(String(second?.time)) >= Date.parse(String(first?.nextAttemptAt)),
      'waited for the backoff',
    );
    assert.ok(
      current.nginx
        .accessLog()
        .some((l) => String(l.path).startsWith('/.well-known/acme-challenge/') && l.status === 404),
    );
    assert.deepEqual(readdirSync(join(elsewhere, '.well-known', 'acme-challenge')), [], 'tokens cleaned up');
    assert.equal(await servedSerial(current.nginx.httpsPort, current.env.DOMAIN ?? ''), current.seed.serial);
    assert.deepEqual(sameFilesNow(before, current.certDir), before);
    assert.equal(await proc.metric('gpt_proxy_cert_self_signed'), 0);
    assert.ok(((await proc.metric('gpt_proxy_cert_renewal_failures_total{reason="challenge"}')) ?? 0) >= 2);
  });

  const diskFaults: Array<[string, (scene: Scene) => void, RegExp]> = [
    [
      'a corrupt fullchain.pem',
      (s) =>
        writeFileSync(join(s.certDir, 'live', 'fullchain.pem'), '-----BEGIN CERTIFICATE-----\ntruncated'),
      /holds no PEM certificate|cannot be parsed/,
    ],
    [
      'a privkey.pem that does not match',
      (s) =>
        writeFileSync(
          join(s.certDir, 'live', 'privkey.pem'),
          caIssuedPair('api.gpt-proxy.test', window()).keyPem,
        ),
      /privkey\.pem does not belong to the certificate in fullchain\.pem/,
    ],
  ];
  for (const [fault, damage, reason] of diskFaults) {
    it(`${fault}: kept aside, the last good pair put back, the same certificate keeps serving`, async () => {
      scene = await startScene({ due: false });
      const current = scene;
      certd = await startCertd(current.env, TICKS);
      const proc = certd;
      await waitFor(async () => ((await proc.metric('gpt_proxy_cert_checks_total')) ?? 0) >= 1, {
        what: 'a check',
      });
      damage(current);
      const damaged = readFileSync(
        join(current.certDir, 'live', fault.includes('privkey') ? 'privkey.pem' : 'fullchain.pem'),
        'utf8',
      );
      await waitFor(() => proc.logs().some((l) => l.msg === 'put back the last good certificate'), {
        timeoutMs: 15_000,
        what: 'the repair',
      });
      const error = proc.logs().find((l) => l.level === 'error');
      assert.match(String(error?.msg), /^the certificate in live\/ is unusable: /);
      assert.match(String(error?.reason), reason);
      const keptIn = String(error?.keptIn);
      assert.match(keptIn, /\/rejected\/[0-9T-]+Z$/);
      assert.ok(
        Object.values(snapshotFiles(keptIn)).includes(damaged),
        'the damaged file is kept, not deleted',
      );
      assert.equal(readFileSync(join(keptIn, 'reason.txt'), 'utf8').trim(), error?.reason);
      assert.equal(
        readFileSync(join(current.certDir, 'live', 'fullchain.pem'), 'utf8'),
        current.seed.chainPem,
      );
      assert.equal(readFileSync(join(current.certDir, 'live', 'privkey.pem'), 'utf8'), current.seed.keyPem);
      // nginx never took the damaged pair (its watcher's `nginx -t` refuses it) and serves the same one.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      assert.equal(
        await servedSerial(current.nginx.httpsPort, current.env.DOMAIN ?? ''),
        current.seed.serial,
      );
      assert.equal(current.ca.orderCount(), 0, 'not due: nothing ordered');
    });
  }
});

function window() {
  return { notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 60 * 86_400_000) };
}
