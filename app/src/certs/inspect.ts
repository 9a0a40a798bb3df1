import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';

/** What certd needs to know about a certificate it can serve. */
export interface CertInfo {
  /** Hex serial as OpenSSL prints it (upper case, no colons). */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Signed by its own key: the placeholder, never a CA-issued certificate. */
  selfSigned: boolean;
  issuer: string;
}

export type PairCheck = { ok: true; info: CertInfo } | { ok: false; reason: string };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, leaf first; throws on a block Node cannot parse. */
export function parseChain(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block));
}

export function describeCert(cert: X509Certificate): CertInfo {
  return {
    serial: cert.serialNumber.toUpperCase(),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    selfSigned: cert.issuer === cert.subject && cert.verify(cert.publicKey),
    issuer: cert.issuer.replace(/\n/g, ', '),
  };
}

/**
 * Checks that a certificate chain and private key form a pair nginx can serve for `domain`:
 * both parse, the key belongs to the leaf, the leaf names the domain, and each certificate of
 * the chain is signed by the next. Returns a reason an operator can act on, never key material.
 */
export function checkPair(chainPem: string, keyPem: string, domain: string): PairCheck {
  let chain: X509Certificate[];
  try {
    chain = parseChain(chainPem);
  } catch {
    return { ok: false, reason: 'fullchain.pem holds a certificate that cannot be parsed' };
  }
  const [leaf, ...rest] = chain;
  if (!leaf) return { ok: false, reason: 'fullchain.pem holds no PEM certificate' };
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return { ok: false, reason: 'privkey.pem holds no private key that can be parsed' };
  }
  if (!leaf.checkPrivateKey(key)) {
    return { ok: false, reason: 'privkey.pem does not belong to the certificate in fullchain.pem' };
  }
  if (leaf.checkHost(domain) === undefined) {
    return {
      ok: false,
      reason: `the certificate is for ${leaf.subjectAltName ?? leaf.subject}, not ${domain}`,
    };
  }
  let child = leaf;
  for (const parent of rest) {
    if (!child.verify(parent.publicKey)) {
      return { ok: false, reason: 'fullchain.pem is not a chain: a certificate is not signed by the next' };
    }
    child = parent;
  }
  return { ok: true, info: describeCert(leaf) };
}

/** When renewal becomes due: once less than `fraction` of the lifetime remains. */
export function renewalDueAt(info: CertInfo, fraction: number): Date {
  const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
  return new Date(info.notAfter.getTime() - fraction * lifetime);
}

/** Renewal is due once less than `fraction` of the lifetime remains; a placeholder is always due with ACME. */
export function isDue(info: CertInfo, acme: boolean, fraction: number, now: Date): boolean {
  return (acme && info.selfSigned) || now >= renewalDueAt(info, fraction);
}

/** Log fields naming a certificate (never key material). */
export function serving(info: CertInfo): Record<string, unknown> {
  return { serial: info.serial, notAfter: info.notAfter.toISOString(), selfSigned: info.selfSigned };
}

/**
 * Why a newly issued pair must not replace the one in place (it fails a check, or is worse), if
 * it must not. `outlast`: the expiry of a certificate in place worth keeping (undefined for the
 * placeholder, or one from another ACME directory), which a worse one must not replace.
 */
export function replacementProblem(
  chainPem: string,
  keyPem: string,
  domain: string,
  outlast: Date | undefined,
  now: Date,
): string | undefined {
  const check = checkPair(chainPem, keyPem, domain);
  if (!check.ok) return `the issued certificate fails a check: ${check.reason}`;
  if (check.info.notAfter <= now) return 'the issued certificate has expired';
  if (outlast && check.info.notAfter < outlast) {
    return 'the issued certificate expires before the one in place';
  }
  return undefined;
}
