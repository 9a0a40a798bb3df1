import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.ts';
import { type CertInfo, checkPair } from './inspect.ts';

/** A certificate chain (leaf first) and its private key, both PEM. */
export interface CertPair {
  chainPem: string;
  keyPem: string;
}

export type StoredCert =
  | { kind: 'missing' }
  | { kind: 'unusable'; reason: string }
  | { kind: 'ok'; info: CertInfo; pair: CertPair };

const CHAIN = 'fullchain.pem';
const KEY = 'privkey.pem';

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err; // unreadable is a storage fault, not a bad certificate: never "repair" it
  }
}

/**
 * The certificate files in CERT_DIR. `live/` is what nginx serves (the contract's paths);
 * `last-good/` mirrors every pair certd installed, so a live file that gets corrupted can be put
 * back as it was; `rejected/` keeps each unusable pair certd moved out of the way, so nothing an
 * operator might need is ever deleted.
 */
export class CertStore {
  readonly dir: string;
  readonly liveDir: string;
  readonly lastGoodDir: string;
  readonly accountDir: string;

  constructor(certDir: string) {
    this.dir = certDir;
    this.liveDir = join(certDir, 'live');
    this.lastGoodDir = join(certDir, 'last-good');
    this.accountDir = join(certDir, 'account');
  }

  async prepare(): Promise<void> {
    await mkdir(this.liveDir, { recursive: true });
    await mkdir(this.lastGoodDir, { recursive: true, mode: 0o700 });
    await mkdir(this.accountDir, { recursive: true, mode: 0o700 });
  }

  readLive(domain: string): Promise<StoredCert> {
    return this.#read(this.liveDir, domain);
  }

  readLastGood(domain: string): Promise<StoredCert> {
    return this.#read(this.lastGoodDir, domain);
  }

  async #read(dir: string, domain: string): Promise<StoredCert> {
    const chainPem = await readOptional(join(dir, CHAIN));
    const keyPem = await readOptional(join(dir, KEY));
    if (chainPem === undefined && keyPem === undefined) return { kind: 'missing' };
    if (chainPem === undefined) return { kind: 'unusable', reason: `${CHAIN} is missing (${KEY} is there)` };
    if (keyPem === undefined) return { kind: 'unusable', reason: `${KEY} is missing (${CHAIN} is there)` };
    const check = checkPair(chainPem, keyPem, domain);
    return check.ok
      ? { kind: 'ok', info: check.info, pair: { chainPem, keyPem } }
      : { kind: 'unusable', ...check };
  }

  /**
   * Installs a pair nginx will pick up: key first, then chain, each by an atomic rename (the key
   * is 0600: nginx's master process reads it as root). Then mirrors it into last-good/.
   */
  async install(pair: CertPair): Promise<void> {
    for (const dir of [this.liveDir, this.lastGoodDir]) {
      await writeFileAtomic(join(dir, KEY), pair.keyPem, 0o600);
      await writeFileAtomic(join(dir, CHAIN), pair.chainPem, 0o644);
    }
  }

  /** Copies the live files into rejected/STAMP/ with the reason, before they are replaced. */
  async reject(reason: string, now: Date): Promise<string> {
    const target = join(this.dir, 'rejected', now.toISOString().replace(/[:.]/g, '-'));
    await mkdir(target, { recursive: true, mode: 0o700 });
    for (const name of [CHAIN, KEY]) {
      await copyFile(join(this.liveDir, name), join(target, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    await writeFile(join(target, 'reason.txt'), `${reason}\n`, { mode: 0o600 });
    return target;
  }
}
