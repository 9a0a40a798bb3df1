import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, ConfigError } from '../config/index.ts';
import type { Logger } from '../log/logger.ts';
import { configureAcmeHttp } from './acme-http.ts';
import type { BackoffPolicy } from './limits.ts';
import { DirLock } from './lock.ts';
import { CertManager } from './manager.ts';
import { CertStore } from './store.ts';

export interface CertSetup {
  manager: CertManager;
  lock: DirLock;
}

/** ACME_CA_FILE's PEM; like any invalid configuration, a file that is not one stops the program (78). */
function readCaFile(path: string): string {
  let problem: string;
  try {
    const pem = readFileSync(path, 'utf8');
    if (pem.includes('-----BEGIN CERTIFICATE-----')) return pem;
    problem = `${path} holds no PEM certificate`;
  } catch (err) {
    problem = `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const error = new ConfigError([
    { variable: 'ACME_CA_FILE', message: `${problem}; point it at a PEM CA bundle` },
  ]);
  process.stderr.write(`gpt-proxy: ${error.message}\n`);
  process.exit(78);
}

/**
 * Builds what certd and issue-cert share from the acme config section: the store in CERT_DIR
 * (created if missing), its lock, acme-client's HTTP layer (trusting ACME_CA_FILE) and the
 * manager.
 */
export async function setupCerts(
  acme: Config['acme'],
  logger: Logger,
  backoff: BackoffPolicy = { minMs: 60_000, maxMs: 21_600_000 },
): Promise<CertSetup> {
  const agent =
    acme.directory.kind === 'acme'
      ? configureAcmeHttp(acme.caFile === undefined ? undefined : readCaFile(acme.caFile), logger)
      : undefined;
  const store = new CertStore(acme.certDir);
  await store.prepare(); // the lock file lives in CERT_DIR, so it must exist before anyone locks
  const manager = new CertManager({ config: acme, store, logger, backoff, agent });
  return { manager, lock: new DirLock(join(acme.certDir, '.lock')) };
}
