import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { oid, time, unsignedInteger } from '../../app/src/certs/der.ts';
import { describeCert } from '../../app/src/certs/inspect.ts';
import { createPlaceholder } from '../../app/src/certs/placeholder.ts';
import { buildCertificate } from '../../app/src/certs/x509.ts';
import { registerTempDir } from '../helpers/processes.ts';

const hex = (b: Buffer) => b.toString('hex');

describe('DER encoding', () => {
  it('encodes OIDs, positive integers and both time forms', () => {
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.equal(hex(oid('2.5.29.17')), '0603551d11');
    assert.equal(hex(unsignedInteger(Buffer.from([0x80]))), '02020080'); // padded: stays positive
    assert.equal(hex(unsignedInteger(Buffer.from([0, 0, 5]))), '020105'); // minimal
    assert.equal(time(new Date('2030-01-02T03:04:05Z')).toString('latin1').slice(2), '300102030405Z');
    assert.equal(time(new Date('2050-01-02T03:04:05Z')).toString('latin1').slice(2), '20500102030405Z');
  });
});

describe('self-signed placeholder', () => {
  it('is a P-256 certificate for the domain that Node and OpenSSL accept', () => {
    const now = new Date();
    const pair = createPlaceholder('api.example.com', now);
    const cert = new X509Certificate(pair.chainPem);
    assert.equal(cert.subject, 'CN=api.example.com');
    assert.equal(cert.subjectAltName, 'DNS:api.example.com');
    assert.equal(cert.checkHost('api.example.com'), 'api.example.com');
    assert.equal(cert.checkHost('other.example.com'), undefined);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(/^-----BEGIN PRIVATE KEY-----/.test(pair.keyPem));
    const info = describeCert(cert);
    assert.equal(info.selfSigned, true);
    const days = (info.notAfter.getTime() - now.getTime()) / 86_400_000;
    assert.ok(days > 89.9 && days <= 90, `lasts 90 days, got ${days}`);
    assert.ok(info.notBefore < now, 'starts before now (clock skew)');

    const dir = mkdtempSync(join(tmpdir(), 'certs-x509-'));
    registerTempDir(dir);
    writeFileSync(join(dir, 'c.pem'), pair.chainPem);
    const text = execFileSync('openssl', ['x509', '-in', join(dir, 'c.pem'), '-noout', '-text'], {
      encoding: 'utf8',
    });
    assert.match(text, /Version: 3/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
    execFileSync('openssl', ['verify', '-CAfile', join(dir, 'c.pem'), join(dir, 'c.pem')]);
  });

  it('gets a new key and serial every time', () => {
    const a = createPlaceholder('api.example.com', new Date());
    const b = createPlaceholder('api.example.com', new Date());
    assert.notEqual(a.keyPem, b.keyPem);
    assert.notEqual(
      new X509Certificate(a.chainPem).serialNumber,
      new X509Certificate(b.chainPem).serialNumber,
    );
  });

  it('builds CA-signed chains that verify', () => {
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const window = { notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 86_400_000) };
    const caPem = buildCertificate({
      commonName: 'Test CA',
      subjectKey: ca,
      issuerName: 'Test CA',
      issuerKey: ca,
      isCa: true,
      ...window,
    });
    const leafPem = buildCertificate({
      commonName: 'api.example.com',
      subjectKey: leafKey,
      issuerName: 'Test CA',
      issuerKey: ca,
      ...window,
    });
    const caCert = new X509Certificate(caPem);
    const leaf = new X509Certificate(leafPem);
    assert.equal(caCert.ca, true);
    assert.equal(leaf.checkIssued(caCert), true);
    assert.equal(leaf.verify(caCert.publicKey), true);
    assert.equal(describeCert(leaf).selfSigned, false);
  });
});
