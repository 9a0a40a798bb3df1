import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configureAcmeHttp } from '../../app/src/certs/acme-http.ts';
import { readLedger } from '../../app/src/certs/ledger.ts';
import { renewWithAcme } from '../../app/src/certs/renew.ts';
import { CertStore } from '../../app/src/certs/store.ts';
import { createLogger } from '../../app/src/log/logger.ts';
import {
  type CaProxy,
  caIssuedPair,
  certdDirs,
  DOMAIN,
  startCaProxy,
  startPebble,
} from '../helpers/pebble.ts';
import { freePort } from '../helpers/processes.ts';

// A CA that stops answering after the challenge was sent, while acme-client polls it for the
// result, is an unreachable CA: it must not be recorded as a failed challenge, which would count
// against the CA's limit of failed validations and send the operator to check port 80.
describe('an order whose CA goes away while it polls', { timeout: 60_000 }, () => {
  it('is recorded as unreachable, not as a failed challenge', async () => {
    const { certDir, webroot } = certdDirs();
    // No nginx: pebble's verdict on the challenge is never read, the proxy is gone by then.
    const ca = await startPebble({ httpPort: await freePort(), domains: [DOMAIN] });
    let proxy: CaProxy | undefined;
    try {
      proxy = await startCaProxy(ca, { goneAfterChallenge: true });
      const logger = createLogger({ level: 'silent', promptBody: false }, 'certd');
      const agent = configureAcmeHttp(readFileSync(ca.caFile, 'utf8'), logger);
      const store = new CertStore(certDir);
      await store.prepare();
      const day = 86_400_000;
      const now = Date.now();
      await store.install(
        caIssuedPair(DOMAIN, { notBefore: new Date(now - 29 * day), notAfter: new Date(now + day) }),
      );
      const live = await store.readLive(DOMAIN);
      assert.ok(live.kind === 'ok');
      const ledgerPath = join(certDir, 'orders.json');
      const config = {
        domain: DOMAIN,
        email: undefined,
        directory: { kind: 'acme' as const, url: proxy.directoryUrl },
        caFile: ca.caFile,
        certDir,
        webroot,
        renewFraction: 0.33,
      };
      const result = await renewWithAcme(
        {
          config,
          acmeUrl: proxy.directoryUrl,
          agent,
          accountDir: store.accountDir,
          ledgerPath,
          logger,
          backoff: { minMs: 60_000, maxMs: 3_600_000 },
          now: () => new Date(),
          install: () => assert.fail('nothing is issued'),
          polling: { attempts: 3, minMs: 100, maxMs: 200 },
        },
        live,
        undefined,
      );
      assert.ok(
        proxy.requests.some((r) => r.method === 'POST' && r.path.startsWith('/chalZ/')),
        'the challenge was sent before the CA went away',
      );
      assert.equal(result.order, 'failed');
      assert.equal(result.error?.reason, 'unreachable', result.why);
      assert.match(String(result.why), /^challenge: no response from the CA: /);
      assert.deepEqual(
        (await readLedger(ledgerPath)).attempts.map((a) => a.reason),
        ['unreachable'],
      );
    } finally {
      await proxy?.close();
      await ca.stop();
    }
  });
});
