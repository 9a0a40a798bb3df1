import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storageError } from './errors.ts';

export type PreflightResult =
  /** The webroot answers at the domain: the CA will find the token. */
  | { served: true }
  /** The domain resolves here but does not serve the webroot (yet): ordering now would likely waste a validation. */
  | { served: false; why: string }
  /** The domain does not resolve from here: nothing to learn, order anyway. */
  | { served: 'unknown'; why: string };

const LOOKUP_TIMEOUT_MS = 3_000;
const FETCH_TIMEOUT_MS = 5_000;

/**
 * Before an order, checks that a token file in the webroot is served at
 * `http://DOMAIN/.well-known/acme-challenge/…`, where the CA will ask for it. Without this, a
 * fresh deployment orders before nginx is up and spends one of Let's Encrypt's five failed
 * validations an hour per host name. A webroot it cannot write to throws a storage OrderError.
 */
export async function challengePreflight(
  domain: string,
  webroot: string,
  port = 80,
): Promise<PreflightResult> {
  const resolved = await Promise.race([
    lookup(domain).then(
      () => true,
      () => false,
    ),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), LOOKUP_TIMEOUT_MS).unref()),
  ]);
  if (!resolved) return { served: 'unknown', why: `${domain} does not resolve from here` };
  const dir = join(webroot, '.well-known', 'acme-challenge');
  const name = `gpt-proxy-preflight-${randomBytes(8).toString('hex')}`;
  const content = randomBytes(16).toString('hex');
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFile(join(dir, name), content, { mode: 0o644 });
  } catch (err) {
    // The order would fail the same way: a storage failure, recorded like any other.
    throw storageError(err, `preflight: writing a test token to ${dir}`);
  }
  try {
    const res = await fetch(`http://${domain}:${port}/.well-known/acme-challenge/${name}`, {
      redirect: 'manual',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    const body = await res.text();
    if (res.ok && body.trim() === content) return { served: true };
    return {
      served: false,
      why: `http://${domain}:${port} answered ${res.status} for a challenge token, not the token`,
    };
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    return { served: false, why: `http://${domain}:${port} is not reachable from here (${code})` };
  } finally {
    await rm(join(dir, name), { force: true });
  }
}

/**
 * Whether to hold an order back after a failed preflight: yes for a while (nginx starting), but
 * not forever — a host without hairpin routing may never reach itself by its public name while
 * the CA reaches it fine.
 */
export class PreflightPatience {
  readonly #limitMs: number;
  #failingSince: number | undefined;

  constructor(limitMs = 120_000) {
    this.#limitMs = limitMs;
  }

  holdBack(result: PreflightResult, now: number): boolean {
    if (result.served !== false) {
      this.#failingSince = undefined;
      return false;
    }
    this.#failingSince ??= now;
    return now - this.#failingSince < this.#limitMs;
  }
}
