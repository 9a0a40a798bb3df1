import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertStore } from '../../app/src/certs/store.ts';
import { type NginxServer, startNginx } from '../helpers/nginx.ts';
import {
  type CertdProcess,
  certdDirs,
  DOMAIN,
  type Pebble,
  servedSerial,
  startCertd,
  startPebble,
  verifiedSerial,
} from '../helpers/pebble.ts';
import { freePort, waitFor } from '../helpers/processes.ts';
import { runScript } from '../helpers/scripts.ts';

const TICKS = ['--check-interval', '2', '--retry-min', '1'];

describe('certd: a certificate through HTTP-01, served by nginx', { timeout: 120_000 }, () => {
  const { certDir, webroot } = certdDirs();
  const store = new CertStore(certDir);
  let ca: Pebble;
  let nginx: NginxServer | undefined;
  let certd: CertdProcess | undefined;
  let env: Record<string, string>;

  before(async () => {
    const httpPort = await freePort();
    ca = await startPebble({ httpPort, domains: [DOMAIN] });
    env = {
      DOMAIN,
      ACME_DIRECTORY: ca.directoryUrl,
      ACME_CA_FILE: ca.caFile,
      CERT_DIR: certDir,
      ACME_WEBROOT: webroot,
    };
    // As in the appliance: certd comes first, and its placeholder lets nginx start at all.
    certd = await startCertd(env, TICKS);
    nginx = await startNginx({ httpPort, appUpstream: '127.0.0.1:9', certDir, webroot, certWaitSeconds: 15 });
  });

  after(async () => {
    await certd?.stop();
    await nginx?.stop();
    await ca?.stop();
  });

  const caIssued = async () => {
    const live = await store.readLive(DOMAIN);
    return live.kind === 'ok' && !live.info.selfSigned ? live.info : undefined;
  };

  it('issues one, and nginx serves it with a chain to pebble root', async () => {
    const info = await waitFor(caIssued, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'a CA-issued certificate',
    });
    const root = await ca.rootPem();
    const served = await waitFor(
      async () => {
        const serial = await verifiedSerial(nginx?.httpsPort ?? 0, DOMAIN, root);
        return serial === info.serial ? serial : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'nginx serving the issued certificate' },
    );
    assert.equal(served, info.serial);
    assert.match(info.issuer, /Pebble Intermediate CA/);

    // pebble's VA fetched the token from nginx's port-80 stand-in; certd removed it afterwards.
    const challenges = nginx
      ?.accessLog()
      .filter((l) => String(l.path).startsWith('/.well-known/acme-challenge/'));
    assert.ok(
      challenges?.some((l) => l.status === 200),
      JSON.stringify(challenges),
    );
    assert.deepEqual(readdirSync(join(webroot, '.well-known', 'acme-challenge')), []);

    assert.equal(statSync(join(certDir, 'live', 'privkey.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(certDir, 'account', 'account-key.pem')).mode & 0o777, 0o600);
    const key = readFileSync(join(certDir, 'live', 'privkey.pem'), 'utf8');
    assert.match(key, /^-----BEGIN PRIVATE KEY-----/);

    const expiry = await certd?.metric('gpt_proxy_cert_expiry_timestamp_seconds');
    assert.equal(expiry, info.notAfter.getTime() / 1000);
    assert.equal(await certd?.metric('gpt_proxy_cert_self_signed'), 0);
    assert.ok(((await certd?.metric('gpt_proxy_cert_last_success_timestamp_seconds')) ?? 0) > 0);
    assert.equal(await certd?.metric('gpt_proxy_cert_orders_total{result="success"}'), 1);
    const logs = certd?.logs() ?? [];
    assert.ok(logs.some((l) => l.msg === 'no certificate yet: installed a self-signed placeholder'));
    assert.ok(logs.some((l) => l.msg === 'installed a CA-issued certificate' && l.serial === info.serial));
    assert.ok(!JSON.stringify(logs).includes('PRIVATE KEY'), 'no key material in the log');
    assert.equal(ca.orderCount(), logs.filter((l) => l.msg === 'ACME order placed').length);
  });

  it('reuses its account and orders nothing more after a restart', async () => {
    const accountKey = readFileSync(join(certDir, 'account', 'account-key.pem'), 'utf8');
    const orders = ca.orderCount();
    const serial = (await caIssued())?.serial;
    await certd?.stop();
    certd = await startCertd(env, TICKS);
    await waitFor(async () => ((await certd?.metric('gpt_proxy_cert_checks_total')) ?? 0) >= 2, {
      timeoutMs: 15_000,
      what: 'two checks',
    });
    assert.equal(ca.orderCount(), orders);
    assert.equal(readFileSync(join(certDir, 'account', 'account-key.pem'), 'utf8'), accountKey);
    assert.equal((await caIssued())?.serial, serial);
    assert.equal(await servedSerial(nginx?.httpsPort ?? 0, DOMAIN), serial);

    // issue-cert finds it in place at once.
    const run = await runScript('issue-cert', ['--timeout', '10'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      `certificate for ${DOMAIN} in place (CA-issued): serial ${serial}, valid until ${(await caIssued())?.notAfter.toISOString()}\n`,
    );
    assert.equal(ca.orderCount(), orders);
  });

  it('issue-cert replaces a certificate another ACME directory issued, then finds its own in place', async () => {
    // certd, on the first directory, is stopped so that it does not take the certificate back.
    await certd?.stop();
    certd = undefined;
    const first = await caIssued();
    const orders = ca.orderCount();
    // The same pebble by another name: another directory, as from letsencrypt-staging to letsencrypt.
    const other = { ...env, ACME_DIRECTORY: ca.directoryUrl.replace('127.0.0.1', 'localhost') };
    const run = await runScript('issue-cert', ['--timeout', '60'], other);
    assert.equal(run.code, 0, run.stderr);
    const second = await caIssued();
    assert.ok(second && first && second.serial !== first.serial, 'a new certificate');
    assert.match(run.stdout, new RegExp(`\\(CA-issued\\): serial ${second.serial}, `));
    assert.equal(ca.orderCount(), orders + 1);
    const again = await runScript('issue-cert', ['--timeout', '10'], other);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(ca.orderCount(), orders + 1, 'nothing ordered for its own certificate');
  });
});

describe('certd and issue-cert with ACME_DIRECTORY=self-signed', { timeout: 60_000 }, () => {
  it('keeps a self-signed certificate in place; issue-cert exits 0 once it is there', async () => {
    const { certDir, webroot } = certdDirs();
    const env = { DOMAIN, ACME_DIRECTORY: 'self-signed', CERT_DIR: certDir, ACME_WEBROOT: webroot };
    const alone = await runScript('issue-cert', [], env);
    assert.equal(alone.code, 0, alone.stderr);
    assert.match(
      alone.stdout,
      /^certificate for api\.gpt-proxy\.test in place \(self-signed placeholder\): serial [0-9A-F]+/,
    );
    const certd = await startCertd(env, TICKS);
    try {
      // The gauges of one check are set one after the other: wait for the whole check.
      await waitFor(
        async () =>
          (await certd.metric('gpt_proxy_cert_checks_total')) === 1 &&
          (await certd.metric('gpt_proxy_cert_self_signed')) === 1,
        { what: 'a check reporting the self-signed certificate' },
      );
      const placeholder = await new CertStore(certDir).readLive(DOMAIN);
      assert.ok(placeholder.kind === 'ok' && placeholder.info.selfSigned);
      assert.match(alone.stdout, new RegExp(placeholder.info.serial), 'certd kept the one issue-cert made');
      assert.equal(existsSync(join(certDir, 'account')), true);
      assert.equal(readdirSync(join(certDir, 'account')).length, 0, 'no ACME account in self-signed mode');
      assert.ok(!certd.logs().some((l) => l.level === 'warn' || l.level === 'error'));
    } finally {
      await certd.stop();
    }
  });
});
