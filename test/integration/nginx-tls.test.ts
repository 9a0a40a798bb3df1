// TLS on the HTTPS port, probed with `openssl s_client`: Mozilla "intermediate" protocols and
// ciphers only, HTTP/2 by ALPN, HSTS on every answer, and both RSA and ECDSA certificates.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { edgeRequest, type NginxServer, startNginx, writeSelfSignedCert } from '../helpers/nginx.ts';
import { registerTempDir } from '../helpers/processes.ts';

let edge: NginxServer;
let backend: Server;
let certDir: string;

function probe(args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${edge.httpsPort}`, '-servername', 'localhost', ...args],
    { input: '', encoding: 'utf8', timeout: 10_000 },
  );
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

function assertHandshake(args: string[], protocol: string, cipher?: string): void {
  const { ok, output } = probe(['-brief', ...args]);
  assert.ok(ok, `expected a handshake with ${args.join(' ')}:\n${output}`);
  assert.match(output, new RegExp(`Protocol version: ${protocol}`));
  if (cipher) assert.match(output, new RegExp(`Ciphersuite: ${cipher}`));
}

function assertRefused(args: string[], alert: RegExp): void {
  const { ok, output } = probe(['-brief', ...args]);
  assert.ok(!ok, `expected no handshake with ${args.join(' ')}:\n${output}`);
  assert.match(output, alert);
}

describe('nginx TLS', () => {
  before(async () => {
    backend = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const base = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-tls-'));
    registerTempDir(base);
    chmodSync(base, 0o755);
    certDir = join(base, 'certs');
    writeSelfSignedCert(certDir, { commonName: 'localhost' });
    const { port } = backend.address() as AddressInfo;
    edge = await startNginx({ appUpstream: `127.0.0.1:${port}`, certDir, webroot: base, watchCerts: false });
  });

  after(async () => {
    await edge?.stop();
    await new Promise((resolve) => backend?.close(resolve));
  });

  test('TLS 1.3 and 1.2 with ECDHE and AEAD ciphers are accepted', () => {
    assertHandshake(['-tls1_3'], 'TLSv1.3');
    assertHandshake(
      ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'],
      'TLSv1.2',
      'ECDHE-RSA-AES128-GCM-SHA256',
    );
    assertHandshake(
      ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384'],
      'TLSv1.2',
      'ECDHE-RSA-AES256-GCM-SHA384',
    );
    assertHandshake(
      ['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305'],
      'TLSv1.2',
      'ECDHE-RSA-CHACHA20-POLY1305',
    );
  });

  test('TLS 1.1 and 1.0 are refused by the server (the client offers them)', () => {
    const legacy = ['-cipher', 'DEFAULT:@SECLEVEL=0'];
    assertRefused(['-tls1_1', ...legacy], /alert protocol version/);
    assertRefused(['-tls1', ...legacy], /alert protocol version/);
  });

  test('CBC, static-RSA and DHE suites and curves outside the list are refused', () => {
    for (const cipher of [
      'ECDHE-RSA-AES128-SHA',
      'ECDHE-RSA-AES256-SHA384',
      'AES128-GCM-SHA256',
      'DHE-RSA-AES128-GCM-SHA256',
    ]) {
      assertRefused(['-tls1_2', '-cipher', cipher], /alert handshake failure/);
    }
    assertRefused(['-tls1_3', '-groups', 'secp521r1'], /alert handshake failure/);
    assertHandshake(['-tls1_3', '-groups', 'X25519'], 'TLSv1.3');
    assertHandshake(['-tls1_3', '-groups', 'P-256'], 'TLSv1.3');
  });

  test('HTTP/2 is offered by ALPN and serves requests', async () => {
    assert.match(probe(['-alpn', 'h2,http/1.1']).output, /ALPN protocol: h2/);
    const session = http2Connect(edge.httpsUrl, { rejectUnauthorized: false });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/v1/models' });
        let body = '';
        let status = 0;
        stream.on('response', (headers) => {
          status = Number(headers[':status']);
        });
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          body += chunk;
        });
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
      assert.equal(status, 200);
      assert.equal(body, '{"ok":true}');
    } finally {
      session.close();
    }
  });

  test('HSTS on answers from the app', async () => {
    const ok = await edgeRequest(`${edge.httpsUrl}/health`);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['strict-transport-security'], 'max-age=63072000');
  });

  test('an ECDSA certificate serves the ECDSA suites', async () => {
    writeSelfSignedCert(certDir, { commonName: 'localhost', keyType: 'ec' });
    await edge.reload();
    assertHandshake(
      ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
      'TLSv1.2',
      'ECDHE-ECDSA-AES128-GCM-SHA256',
    );
    assertHandshake(
      ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
      'TLSv1.2',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
    );
    assertRefused(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA'], /alert handshake failure/);
  });
});
