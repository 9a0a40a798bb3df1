import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { configureAcmeHttp } from '../../app/src/certs/acme-http.ts';
import { CertDaemon } from '../../app/src/certs/daemon.ts';
import { DirLock } from '../../app/src/certs/lock.ts';
import { CertManager } from '../../app/src/certs/manager.ts';
import { type CertMetrics, createCertMetrics } from '../../app/src/certs/metrics.ts';
import { CertStore } from '../../app/src/certs/store.ts';
import type { Config } from '../../app/src/config/index.ts';
import { createLogger } from '../../app/src/log/logger.ts';
import { certdDirs, type LogLine } from '../helpers/pebble.ts';
import { freePort } from '../helpers/processes.ts';

// A CERT_DIR or ACME_WEBROOT certd cannot write to must be a counted storage failure (order
// record, renewal_failures_total{reason="storage"}, the hint in the log), not only a log line
// retried on every check while the certificate runs out. Tests run as root, whom permissions do
// not stop: here the path certd must write is taken by a file.

interface Setup {
  domain: string;
  directory: Config['acme']['directory'];
  /** Puts a file where certd needs a directory; returns the webroot to use. */
  damage: (dirs: ReturnType<typeof certdDirs>) => string;
}

async function daemonFor({ domain, directory, damage }: Setup) {
  const dirs = certdDirs();
  const store = new CertStore(dirs.certDir);
  await store.prepare(); // as setupCerts does when certd starts
  const webroot = damage(dirs);
  const lines: LogLine[] = [];
  const logger = createLogger({ level: 'info', promptBody: false }, 'certd', {
    write: (line: string) => lines.push(JSON.parse(line) as LogLine),
  });
  const config: Config['acme'] = {
    domain,
    email: undefined,
    directory,
    caFile: undefined,
    certDir: dirs.certDir,
    webroot,
    renewFraction: 0.33,
  };
  const agent = directory.kind === 'acme' ? configureAcmeHttp(undefined, logger) : undefined;
  const backoff = { minMs: 60_000, maxMs: 3_600_000 };
  const manager = new CertManager({ config, store, logger, backoff, agent });
  const metrics = createCertMetrics(new Registry());
  const lock = new DirLock(join(dirs.certDir, '.lock'));
  const daemon = new CertDaemon({
    manager,
    lock,
    logger,
    metrics,
    renewFraction: 0.33,
    checkIntervalMs: 600_000,
  });
  return { daemon, manager, metrics, lines };
}

async function failures(metrics: CertMetrics, reason: string): Promise<number | undefined> {
  return (await metrics.failures.get()).values.find((v) => v.labels.reason === reason)?.value;
}

describe('certd, storage it cannot write', () => {
  it('a webroot the preflight cannot write to: a storage failure, counted, recorded, with the hint', async () => {
    const url = `https://127.0.0.1:${await freePort()}/dir`; // never reached
    // localhost resolves, so the preflight writes its test token into the webroot.
    const { daemon, manager, metrics, lines } = await daemonFor({
      domain: 'localhost',
      directory: { kind: 'acme', url },
      damage: (d) => {
        writeFileSync(join(d.base, 'webroot-file'), '');
        return join(d.base, 'webroot-file');
      },
    });
    const delay = await daemon.tick();
    assert.equal(await failures(metrics, 'storage'), 1);
    const ledger = await manager.readLedger();
    assert.deepEqual(
      ledger.attempts.map((a) => a.reason),
      ['storage'],
    );
    const logged = lines.find((l) => l.level === 'error');
    assert.match(
      String(logged?.msg),
      /^certificate order failed \(storage\): preflight: writing a test token to .*webroot-file\/\.well-known\/acme-challenge: ENOTDIR/,
    );
    assert.match(String(logged?.hint), /ACME_WEBROOT are writable/);
    // The next check waits for the backoff, not just the check interval.
    assert.ok(delay <= Date.parse(String(ledger.backoffUntil)) - Date.now() + 1_000, `${delay}`);
    assert.equal(
      (await metrics.nextAttempt.get()).values[0]?.value,
      Date.parse(String(ledger.backoffUntil)) / 1000,
    );
  });

  const brokenAfterStart: Array<[string, (d: ReturnType<typeof certdDirs>) => void, RegExp]> = [
    [
      'a CERT_DIR directory that cannot be made again',
      (d) => {
        rmSync(join(d.certDir, 'last-good'), { recursive: true });
        writeFileSync(join(d.certDir, 'last-good'), '');
      },
      /^certificate upkeep failed \(storage\): creating the directories in .*: EEXIST/,
    ],
    [
      'a certificate that cannot be installed',
      (d) => mkdirSync(join(d.certDir, 'last-good', 'fullchain.pem', 'in-the-way'), { recursive: true }),
      /^certificate upkeep failed \(storage\): installing the certificate: EISDIR.*; keeping the certificate in place$/,
    ],
  ];
  for (const [fault, damage, message] of brokenAfterStart) {
    it(`${fault}: a storage failure too`, async () => {
      const { daemon, manager, metrics, lines } = await daemonFor({
        domain: 'api.example.com',
        directory: { kind: 'self-signed' },
        damage: (d) => {
          damage(d);
          return d.webroot;
        },
      });
      await daemon.tick();
      assert.equal(await failures(metrics, 'storage'), 1);
      const logged = lines.find((l) => l.level === 'error');
      assert.match(String(logged?.msg), message);
      assert.match(String(logged?.hint), /CERT_DIR/);
      assert.deepEqual(
        (await manager.readLedger()).attempts.map((a) => a.reason),
        ['storage'],
      );
    });
  }
});
