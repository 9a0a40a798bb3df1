import { generateKeyPairSync } from 'node:crypto';
import type { CertPair } from './store.ts';
import { buildCertificate } from './x509.ts';

const DAY_MS = 86_400_000;

/**
 * A self-signed certificate for `domain` with a fresh P-256 key: what nginx serves before the
 * first CA-issued certificate exists (it cannot start without one), and all it serves with
 * ACME_DIRECTORY=self-signed. It lasts 90 days like a Let's Encrypt certificate, so the same
 * CERT_RENEW_FRACTION rule renews it; it starts an hour early to tolerate clock skew.
 */
export function createPlaceholder(domain: string, now: Date, validityDays = 90): CertPair {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const chainPem = buildCertificate({
    commonName: domain,
    subjectKey: privateKey,
    issuerName: domain,
    issuerKey: privateKey,
    notBefore: new Date(now.getTime() - 3_600_000),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
  });
  return { chainPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
