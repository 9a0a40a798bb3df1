import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  type CaProxy,
  type CertdProcess,
  orderFailures,
  type Scene,
  sameFilesNow,
  servedSerial,
  snapshotFiles,
  startCaProxy,
  startCertd,
  startScene,
  verifiedSerial,
} from '../helpers/pebble.ts';
import { freePort, waitFor } from '../helpers/processes.ts';

// Faults on the CA's side. Each test starts from a CA-issued certificate that is due for
// renewal and served by nginx; the fault must leave it serving, untouched, while certd backs off.
const TICKS = ['--check-interval', '2', '--retry-min', '1'];

describe('certd when the CA cannot be used', { timeout: 120_000 }, () => {
  let scene: Scene | undefined;
  let certd: CertdProcess | undefined;
  let proxy: CaProxy | undefined;

  afterEach(async () => {
    await certd?.stop();
    await proxy?.close();
    await scene?.stop();
    certd = proxy = scene = undefined;
  });

  it('unreachable CA: clear log lines, growing backoff, the old certificate keeps serving', async () => {
    scene = await startScene();
    const before = snapshotFiles(scene.certDir);
    const closed = await freePort();
    certd = await startCertd({ ...scene.env, ACME_DIRECTORY: `https://127.0.0.1:${closed}/dir` }, TICKS);
    const proc = certd;
    await waitFor(() => orderFailures(proc).length >= 3, {
      timeoutMs: 30_000,
      what: 'three failed attempts',
    });
    const failures = orderFailures(proc);
    for (const [i, line] of failures.entries()) {
      assert.equal(line.reason, 'unreachable');
      assert.equal(line.failures, i + 1);
      assert.match(
        String(line.msg),
        /^certificate order failed \(unreachable\): cannot reach the CA at https:\/\/127\.0\.0\.1:\d+\/dir: connect ECONNREFUSED .*; keeping the certificate in place$/,
      );
      assert.equal((line.keeping as { serial: string }).serial, scene.seed.serial);
    }
    // Backoff: each attempt waits for the time the previous failure set, and the waits grow.
    const delays = failures.map((l) => Date.parse(String(l.nextAttemptAt)) - Date.parse(String(l.time)));
    for (let i = 1; i < failures.length; i++) {
      assert.ok(Date.parse(String(failures[i]?.time)) >= Date.parse(String(failures[i - 1]?.nextAttemptAt)));
    }
    assert.ok((delays[2] ?? 0) > (delays[0] ?? 0), `delays grow: ${delays}`);
    assert.ok(
      proc.logs().some((l) => l.msg === 'the certificate expires soon and renewal has not succeeded yet'),
    );
    assert.ok(((await proc.metric('gpt_proxy_cert_renewal_failures_total{reason="unreachable"}')) ?? 0) >= 3);
    assert.ok(
      ((await proc.metric('gpt_proxy_cert_next_attempt_timestamp_seconds')) ?? 0) > Date.now() / 1000 - 5,
    );
    assert.equal(await servedSerial(scene.nginx.httpsPort, scene.env.DOMAIN ?? ''), scene.seed.serial);
    assert.deepEqual(sameFilesNow(before, scene.certDir), before, 'nothing deleted or replaced');
    assert.equal(scene.ca.orderCount(), 0);

    // The backoff is on disk (CERT_DIR/orders.json): a restarted certd does not try sooner.
    await proc.stop();
    const lastFailure = orderFailures(proc).at(-1);
    const restarted = await startCertd(
      { ...scene.env, ACME_DIRECTORY: `https://127.0.0.1:${closed}/dir` },
      TICKS,
    );
    certd = restarted;
    await waitFor(() => restarted.logs().some((l) => l.msg === 'ordering a certificate'), {
      timeoutMs: 30_000,
      what: 'the next attempt',
    });
    const next = restarted.logs().find((l) => l.msg === 'ordering a certificate');
    assert.ok(
      Date.parse(String(next?.time)) >= Date.parse(String(lastFailure?.nextAttemptAt)),
      'honours the backoff',
    );
    assert.equal(orderFailures(restarted)[0]?.failures ?? 4, 4, 'the count of failures goes on');
  });

  it("rate limit (429): honours the CA's Retry-After, then renews", async () => {
    scene = await startScene();
    const current = scene;
    proxy = await startCaProxy(current.ca, { rateLimit: { retryAfterSeconds: 8 } });
    const before = snapshotFiles(current.certDir);
    certd = await startCertd({ ...current.env, ACME_DIRECTORY: proxy.directoryUrl }, TICKS);
    const proc = certd;
    await waitFor(() => orderFailures(proc).length >= 1, { timeoutMs: 20_000, what: 'the 429' });
    const [limited] = orderFailures(proc);
    assert.equal(limited?.reason, 'rate_limited');
    assert.equal(limited?.retryAfterSeconds, 8);
    assert.match(
      String(limited?.msg),
      /^certificate order failed \(rate_limited\): new order: rate limited by the CA: too many new orders recently \(test proxy\)/,
    );
    const limitedAt = Date.parse(String(limited?.time));
    assert.ok(
      Date.parse(String(limited?.nextAttemptAt)) >= limitedAt + 7_900,
      'no attempt before Retry-After',
    );
    // While it waits, the old certificate serves, and nothing changed on disk.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(await servedSerial(current.nginx.httpsPort, current.env.DOMAIN ?? ''), current.seed.serial);
    assert.deepEqual(sameFilesNow(before, current.certDir), before);
    assert.ok(proc.logs().some((l) => String(l.msg).startsWith('renewal is due; next attempt at')));
    // Then it orders again - not before the Retry-After - and the new certificate is served.
    const root = await current.ca.rootPem();
    await waitFor(
      async () =>
        (await verifiedSerial(current.nginx.httpsPort, current.env.DOMAIN ?? '', root)) !==
        current.seed.serial,
      { timeoutMs: 40_000, intervalMs: 500, what: 'the renewed certificate served' },
    );
    // A nonce pebble turned down is retried by acme-client on its own: not another attempt by certd.
    const newOrders = proxy.requests.filter(
      (r) => r.path === '/order-plz' && r.problem !== 'urn:ietf:params:acme:error:badNonce',
    );
    assert.equal(newOrders[0]?.status, 429);
    assert.ok(
      (newOrders[1]?.at ?? 0) >= (newOrders[0]?.at ?? 0) + 8_000,
      'the second new order waited for Retry-After',
    );
    assert.equal(newOrders.length, 2, JSON.stringify(proxy.requests));
    assert.notEqual(
      await verifiedSerial(current.nginx.httpsPort, current.env.DOMAIN ?? '', root),
      current.seed.serial,
    );
  });

  it('a domain that does not resolve: a DNS failure, then success once it resolves', async () => {
    scene = await startScene({ domain: 'nowhere.gpt-proxy.test', resolves: false });
    const current = scene;
    const before = snapshotFiles(current.certDir);
    certd = await startCertd(current.env, TICKS);
    const proc = certd;
    await waitFor(() => orderFailures(proc).length >= 2, { timeoutMs: 30_000, what: 'two DNS failures' });
    const [first] = orderFailures(proc);
    assert.equal(first?.reason, 'dns');
    assert.match(
      String(first?.msg),
      /http-01 challenge for nowhere\.gpt-proxy\.test failed \(\w+\): .*could not resolve/,
    );
    assert.match(String(first?.hint), /DOMAIN must resolve/);
    assert.equal(await servedSerial(current.nginx.httpsPort, 'nowhere.gpt-proxy.test'), current.seed.serial);
    assert.deepEqual(sameFilesNow(before, current.certDir), before);
    await current.ca.setResolves('nowhere.gpt-proxy.test', true);
    const root = await current.ca.rootPem();
    await waitFor(
      async () =>
        (await verifiedSerial(current.nginx.httpsPort, 'nowhere.gpt-proxy.test', root)) !==
        current.seed.serial,
      { timeoutMs: 40_000, intervalMs: 500, what: 'the renewed certificate served' },
    );
  });
});
