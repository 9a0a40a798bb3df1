import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPlaceholder } from '../../app/src/certs/placeholder.ts';
import { CertStore } from '../../app/src/certs/store.ts';
import { type NginxServer, startNginx } from '../helpers/nginx.ts';
import {
  type CertdProcess,
  certdDirs,
  DOMAIN,
  type Pebble,
  startCertd,
  startPebble,
  verifiedSerial,
} from '../helpers/pebble.ts';
import { freePort, waitFor } from '../helpers/processes.ts';

// Pebble issues 30-second certificates; with CERT_RENEW_FRACTION=0.5 each is due 15 s after it
// starts. certd checks every 2 s, so most ticks find nothing due and must order nothing.
const VALIDITY_S = 30;
const RENEWALS = 3;

interface Seen {
  serial: string;
  notBefore: number;
  notAfter: number;
  seenAt: number;
}

describe('certd renews short-lived certificates before they expire', { timeout: 120_000 }, () => {
  const { certDir, webroot } = certdDirs();
  const store = new CertStore(certDir);
  let ca: Pebble;
  let nginx: NginxServer | undefined;
  let certd: CertdProcess | undefined;

  before(async () => {
    const httpPort = await freePort();
    ca = await startPebble({ httpPort, domains: [DOMAIN], validitySeconds: VALIDITY_S });
    await store.prepare();
    await store.install(createPlaceholder(DOMAIN, new Date())); // certd's first act, done here
    nginx = await startNginx({ httpPort, appUpstream: '127.0.0.1:9', certDir, webroot });
    const env = {
      DOMAIN,
      ACME_DIRECTORY: ca.directoryUrl,
      ACME_CA_FILE: ca.caFile,
      CERT_DIR: certDir,
      ACME_WEBROOT: webroot,
      CERT_RENEW_FRACTION: '0.5',
    };
    certd = await startCertd(env, ['--check-interval', '2', '--retry-min', '1']);
  });

  after(async () => {
    await certd?.stop();
    await nginx?.stop();
    await ca?.stop();
  });

  it(`renews ${RENEWALS} times in a row, each in time, ordering only when due`, async () => {
    const seen: Seen[] = [];
    await waitFor(
      async () => {
        const live = await store.readLive(DOMAIN);
        if (live.kind === 'ok' && !live.info.selfSigned && seen.at(-1)?.serial !== live.info.serial) {
          const { serial, notBefore, notAfter } = live.info;
          seen.push({
            serial,
            notBefore: notBefore.getTime(),
            notAfter: notAfter.getTime(),
            seenAt: Date.now(),
          });
        }
        return seen.length >= RENEWALS + 1;
      },
      { timeoutMs: 100_000, intervalMs: 100, what: `${RENEWALS + 1} CA-issued certificates` },
    );
    for (let i = 1; i < seen.length; i++) {
      const [previous, next] = [seen[i - 1], seen[i]];
      assert.ok(previous && next);
      const dueAt = previous.notAfter - 0.5 * (previous.notAfter - previous.notBefore);
      assert.ok(
        next.seenAt < previous.notAfter,
        `certificate ${i} replaced before it expired: ${JSON.stringify(seen)}`,
      );
      assert.ok(
        next.seenAt >= dueAt - 1_000,
        `certificate ${i} not replaced before it was due: ${JSON.stringify(seen)}`,
      );
    }
    // One order per certificate: the ticks in between ordered nothing.
    const installed = () =>
      certd?.logs().filter((l) => l.msg === 'installed a CA-issued certificate').length ?? 0;
    const installs = await waitFor(() => (installed() >= seen.length ? installed() : 0), {
      what: 'the last install logged',
    });
    const checks = (await certd?.metric('gpt_proxy_cert_checks_total')) ?? 0;
    assert.equal(ca.orderCount(), installs, certd?.output());
    assert.ok(checks >= 2 * installs, `${checks} checks for ${installs} orders`);
    assert.equal(await certd?.metric('gpt_proxy_cert_orders_total{result="failure"}'), 0, certd?.output());

    // nginx follows (its watcher reloads): it serves the newest one, chained to pebble's root.
    const root = await ca.rootPem();
    await waitFor(
      async () => {
        const live = await store.readLive(DOMAIN);
        return (
          live.kind === 'ok' &&
          (await verifiedSerial(nginx?.httpsPort ?? 0, DOMAIN, root)) === live.info.serial
        );
      },
      { timeoutMs: 15_000, intervalMs: 250, what: 'nginx serving the latest certificate' },
    );
    assert.ok((nginx?.reloads() ?? 0) >= RENEWALS, `nginx reloaded ${nginx?.reloads()} times`);
  });
});
