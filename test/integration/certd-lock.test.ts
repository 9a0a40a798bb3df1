import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPlaceholder } from '../../app/src/certs/placeholder.ts';
import { CertStore } from '../../app/src/certs/store.ts';
import { type NginxServer, startNginx } from '../helpers/nginx.ts';
import {
  type CaProxy,
  certdDirs,
  DOMAIN,
  type Pebble,
  parseLogs,
  startCaProxy,
  startCertd,
  startPebble,
} from '../helpers/pebble.ts';
import { freePort, waitFor } from '../helpers/processes.ts';
import { runScript } from '../helpers/scripts.ts';

// One pebble, nginx and CERT_DIR for the file (pebble's VA is pointed at that one nginx); each
// test starts again from a fresh placeholder.
describe('one order at a time: certd and issue-cert share a lock in CERT_DIR', { timeout: 120_000 }, () => {
  const { certDir, webroot } = certdDirs();
  const store = new CertStore(certDir);
  let ca: Pebble;
  let slow: CaProxy;
  let nginx: NginxServer | undefined;
  const env = () => ({ DOMAIN, ACME_CA_FILE: ca.caFile, CERT_DIR: certDir, ACME_WEBROOT: webroot });

  before(async () => {
    const httpPort = await freePort();
    ca = await startPebble({ httpPort, domains: [DOMAIN] });
    // Finalization held for 6 s keeps certd's order under way long enough to race it.
    slow = await startCaProxy(ca, { delayFinalizeMs: 6_000 });
    await store.prepare();
    await store.install(createPlaceholder(DOMAIN, new Date()));
    nginx = await startNginx({ httpPort, appUpstream: '127.0.0.1:9', certDir, webroot });
  });

  after(async () => {
    await nginx?.stop();
    await slow?.close();
    await ca?.stop();
  });

  const freshStart = async () => store.install(createPlaceholder(DOMAIN, new Date()));

  it('issue-cert started while certd is ordering waits for it and does not order again', async () => {
    await freshStart();
    const orders = ca.orderCount();
    const certd = await startCertd({ ...env(), ACME_DIRECTORY: slow.directoryUrl }, [
      '--check-interval',
      '2',
    ]);
    try {
      await waitFor(() => certd.logs().some((l) => l.msg === 'ACME order placed'), {
        timeoutMs: 20_000,
        what: "certd's order",
      });
      const run = await runScript('issue-cert', ['--timeout', '60'], {
        ...env(),
        ACME_DIRECTORY: slow.directoryUrl,
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /in place \(CA-issued\)/);
      assert.ok(parseLogs(run.stderr).some((l) => l.msg === 'an order is already under way; waiting for it'));
      assert.ok(!parseLogs(run.stderr).some((l) => l.msg === 'ordering a certificate'));
      assert.equal(ca.orderCount(), orders + 1, 'one order in all');
    } finally {
      await certd.stop();
    }
  });

  it('issue-cert takes over from a holder that crashed mid-order', async () => {
    await freshStart();
    const orders = ca.orderCount();
    const certd = await startCertd({ ...env(), ACME_DIRECTORY: slow.directoryUrl }, [
      '--check-interval',
      '2',
    ]);
    await waitFor(() => certd.logs().some((l) => l.msg === 'ACME order placed'), {
      timeoutMs: 20_000,
      what: "certd's order",
    });
    await certd.stop('SIGKILL'); // no chance to release the lock
    const started = Date.now();
    const run = await runScript('issue-cert', ['--timeout', '60'], {
      ...env(),
      ACME_DIRECTORY: ca.directoryUrl,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(Date.now() - started < 20_000, 'a dead holder on this host is noticed at once');
    assert.equal(ca.orderCount(), orders + 2, "certd's abandoned order and issue-cert's");
    // And run again, it finds the certificate in place and orders nothing.
    const again = await runScript('issue-cert', ['--timeout', '10'], {
      ...env(),
      ACME_DIRECTORY: ca.directoryUrl,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(ca.orderCount(), orders + 2);
  });

  it('issue-cert gives up at its timeout while a live holder keeps the lock', async () => {
    await freshStart();
    const lockPath = join(certDir, '.lock');
    const holder = {
      pid: 1,
      hostname: 'certd-container',
      token: 'x',
      purpose: 'certd',
      since: new Date().toISOString(),
    };
    writeFileSync(lockPath, JSON.stringify(holder));
    const beat = setInterval(() => utimesSync(lockPath, new Date(), new Date()), 500);
    try {
      const run = await runScript('issue-cert', ['--timeout', '3'], {
        ...env(),
        ACME_DIRECTORY: ca.directoryUrl,
      });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^issue-cert: timed out after 3 s waiting for the order under way$/m);
      assert.ok(
        parseLogs(run.stderr).some(
          (l) => (l.holder as { hostname?: string })?.hostname === 'certd-container',
        ),
      );
    } finally {
      clearInterval(beat);
    }
    // Once that holder stops touching the lock (it died on another host), it is stale after 30 s:
    // pretend the time has passed.
    const past = new Date(Date.now() - 31_000);
    utimesSync(lockPath, past, past);
    const run = await runScript('issue-cert', ['--timeout', '30'], {
      ...env(),
      ACME_DIRECTORY: ca.directoryUrl,
    });
    assert.equal(run.code, 0, run.stderr);
  });

  it('issue-cert fails with the reason when its own order fails', async () => {
    await freshStart();
    const closed = await freePort();
    const run = await runScript('issue-cert', ['--timeout', '30'], {
      ...env(),
      ACME_DIRECTORY: `https://127.0.0.1:${closed}/dir`,
    });
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^issue-cert: cannot reach the CA at https:\/\/127\.0\.0\.1:\d+\/dir: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(check ACME_DIRECTORY, outbound HTTPS and ACME_CA_FILE\)$/m,
    );
  });
});
