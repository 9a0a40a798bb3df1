import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import acme from 'acme-client';
import type { Logger } from '../log/logger.ts';
import { createFileAtomic } from './atomic.ts';
import { OrderError } from './errors.ts';

async function readKey(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OrderError('storage', `cannot read the ACME account key ${path}: ${(err as Error).message}`);
  }
}

/**
 * The ACME account key in CERT_DIR/account/, created once (ECDSA P-256, mode 0600) and reused
 * for every order: the CA finds the account again by its key, so no account URL is stored.
 * Created without replacing, so two first runs at once still end up with one key.
 */
export async function loadAccountKey(accountDir: string, logger: Logger): Promise<string> {
  const path = join(accountDir, 'account-key.pem');
  let pem = await readKey(path);
  if (pem === undefined) {
    const fresh = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    if (await createFileAtomic(path, fresh, 0o600)) logger.info({ path }, 'created the ACME account key');
    pem = (await readKey(path)) ?? fresh;
  }
  try {
    createPrivateKey(pem);
  } catch {
    throw new OrderError(
      'storage',
      `the ACME account key ${path} cannot be parsed; move it away to start a new account`,
    );
  }
  return pem;
}
