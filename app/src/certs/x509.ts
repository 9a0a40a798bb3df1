import { createPublicKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import {
  bitString,
  boolean,
  explicit,
  octetString,
  oid,
  sequence,
  set,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from './der.ts';

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

export interface CertificateSpec {
  /** Subject common name; a leaf also gets it as its only DNS subject alternative name. */
  commonName: string;
  /** The subject's public key (or its private key, whose public half is used). */
  subjectKey: KeyObject;
  /** Issuer name and P-256 signing key; the subject's own for a self-signed certificate. */
  issuerName: string;
  issuerKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A CA certificate (for test CAs) instead of a TLS server certificate. */
  isCa?: boolean;
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(oid('2.5.4.3'), utf8String(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function extensions(spec: CertificateSpec): Buffer {
  if (spec.isCa) {
    return sequence(
      extension('2.5.29.19', true, sequence(boolean(true))),
      extension('2.5.29.15', true, bitString(Buffer.from([0x06]), 1)), // keyCertSign, cRLSign
    );
  }
  return sequence(
    extension('2.5.29.19', true, sequence()),
    extension('2.5.29.15', true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
    extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
    extension('2.5.29.17', false, sequence(tlv(0x82, Buffer.from(spec.commonName, 'ascii')))),
  );
}

/**
 * Builds and signs an X.509 v3 certificate (ECDSA P-256 with SHA-256) and returns it as PEM.
 * Used for the self-signed placeholder; tests also use it to make throwaway CAs. The serial is
 * 16 random bytes, as the CA/Browser Forum asks of public CAs.
 */
export function buildCertificate(spec: CertificateSpec): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const spki = createPublicKey(spec.subjectKey).export({ type: 'spki', format: 'der' });
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))),
    unsignedInteger(serial),
    ECDSA_WITH_SHA256,
    name(spec.issuerName),
    sequence(time(spec.notBefore), time(spec.notAfter)),
    name(spec.commonName),
    spki,
    explicit(3, extensions(spec)),
  );
  const signature = sign('sha256', tbs, spec.issuerKey);
  const der = sequence(tbs, ECDSA_WITH_SHA256, bitString(signature));
  const body = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
}
