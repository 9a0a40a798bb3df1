// Certificate changes picked up by the watcher (nginx/docker-entrypoint.d/40-...): a new pair
// means a graceful reload that an open stream survives; a broken or mismatched pair fails
// `nginx -t` and changes nothing, and is tested again later (a failure may pass); old workers
// keep long streams for worker_shutdown_timeout at most.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.ts';
import {
  type EdgeStream,
  NGINX_BIN,
  type NginxServer,
  openStream,
  startNginx,
  writeSelfSignedCert,
} from '../helpers/nginx.ts';
import { pidAlive, registerTempDir, waitFor } from '../helpers/processes.ts';

let fake: FakeUpstream;
let base: string;
let certDir: string;
let edge: NginxServer;

/** The CN of the certificate a new TLS connection is served. */
function servedCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => {
        const cn = socket.getPeerCertificate().subject.CN;
        socket.end();
        resolve(String(cn));
      },
    );
    socket.once('error', reject);
  });
}

function postChat(target: NginxServer): Promise<EdgeStream> {
  return openStream(`${target.httpsUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
}

async function firstEvent(stream: EdgeStream): Promise<void> {
  await waitFor(() => stream.text().includes('data: '), { timeoutMs: 5000, what: 'the first event' });
}

/** Replaces one file the way certd does: a temp file, then a rename over the old one. */
function replaceFile(path: string, content: string | Buffer): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

const count = (text: string, what: string) => text.split(what).length - 1;
const REJECTED = 'the configuration test failed';

describe('nginx certificate reloads', () => {
  before(async () => {
    fake = await startFakeUpstream();
    base = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-reload-'));
    registerTempDir(base);
    chmodSync(base, 0o755);
    certDir = join(base, 'certs');
    writeSelfSignedCert(certDir, { commonName: 'cert-a.test' });
    edge = await startNginx({ appUpstream: `127.0.0.1:${fake.port}`, certDir, webroot: base });
  });

  after(async () => {
    await edge?.stop();
    await fake?.close();
  });

  test('a new certificate is served after a reload; a stream opened before it completes after it', async () => {
    assert.equal(await servedCommonName(edge.httpsPort), 'cert-a.test');
    const latch = fake.holdStreams();
    const stream = await postChat(edge);
    try {
      await firstEvent(stream);
      writeSelfSignedCert(certDir, { commonName: 'cert-b.test' });
      await edge.waitForReloads(1, 20_000);
      assert.match(edge.watcherOutput(), /configuration test passed, nginx reloaded/);
      assert.equal(await servedCommonName(edge.httpsPort), 'cert-b.test');
      assert.ok(!stream.text().includes('[DONE]'), 'the stream is still held by the upstream');
      latch.release();
      assert.equal(await stream.ended, true, 'the old worker finished the stream');
      assert.match(stream.text(), /data: \[DONE\]\n\n$/);
    } finally {
      latch.release();
      stream.close();
    }
  });

  test('a broken or mismatched certificate fails nginx -t: no reload, the old one keeps serving', async () => {
    const reloads = edge.reloads();
    const live = join(certDir, 'live');
    replaceFile(
      join(live, 'fullchain.pem'),
      '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n',
    );
    await waitFor(() => count(edge.watcherOutput(), REJECTED) >= 1, {
      timeoutMs: 15_000,
      what: 'rejection 1',
    });

    // A valid certificate whose key is not the one in privkey.pem.
    const other = join(base, 'other');
    writeSelfSignedCert(other, { commonName: 'cert-other.test' });
    replaceFile(join(live, 'fullchain.pem'), readFileSync(join(other, 'live', 'fullchain.pem')));
    await waitFor(() => count(edge.watcherOutput(), REJECTED) >= 2, {
      timeoutMs: 15_000,
      what: 'rejection 2',
    });

    assert.match(edge.watcherOutput(), /cannot load certificate/);
    assert.match(edge.watcherOutput(), /key values mismatch/);
    assert.equal(edge.reloads(), reloads, 'no reload happened');
    assert.ok(pidAlive(edge.pid));
    assert.equal(await servedCommonName(edge.httpsPort), 'cert-b.test');
    const stream = await postChat(edge);
    assert.equal(await stream.ended, true);
    assert.equal(stream.status, 200);

    writeSelfSignedCert(certDir, { commonName: 'cert-c.test' });
    await edge.waitForReloads(reloads + 1, 20_000);
    assert.equal(await servedCommonName(edge.httpsPort), 'cert-c.test', 'a good pair is picked up again');
  });

  test('a pair whose configuration test failed once is tested again, and served once it passes', async () => {
    const dir = join(base, 'flaky');
    mkdirSync(dir);
    const arm = join(dir, 'fail-next-test');
    // nginx, whose next configuration test fails once this test arms it: a failure that passes.
    const wrapper = join(dir, 'nginx');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = -t ] && rm "${arm}" 2>/dev/null; then\n` +
        `    echo 'nginx: [emerg] a passing failure' >&2\n    exit 1\n  fi\ndone\nexec ${NGINX_BIN} "$@"\n`,
      { mode: 0o755 },
    );
    const certs = join(dir, 'certs');
    writeSelfSignedCert(certs, { commonName: 'retry-a.test' });
    const flaky = await startNginx({
      appUpstream: `127.0.0.1:${fake.port}`,
      certDir: certs,
      webroot: base,
      env: { NGINX_BIN: wrapper, NGINX_CERT_RETRY_INTERVAL: '2' },
    });
    try {
      writeFileSync(arm, '');
      writeSelfSignedCert(certs, { commonName: 'retry-b.test' });
      await waitFor(() => flaky.watcherOutput().includes(REJECTED), {
        timeoutMs: 15_000,
        what: 'the rejection',
      });
      assert.match(flaky.watcherOutput(), /a passing failure/);
      assert.equal(await servedCommonName(flaky.httpsPort), 'retry-a.test');
      await flaky.waitForReloads(1, 20_000);
      assert.match(flaky.watcherOutput(), /testing again the certificate rejected \d+s ago/);
      assert.equal(await servedCommonName(flaky.httpsPort), 'retry-b.test');
      assert.equal(count(flaky.watcherOutput(), REJECTED), 1);
    } finally {
      await flaky.stop();
    }
  });

  test('after a reload, old workers keep a long stream for worker_shutdown_timeout at most', async () => {
    const bounded = await startNginx({
      appUpstream: `127.0.0.1:${fake.port}`,
      certDir,
      webroot: base,
      watchCerts: false,
      env: { NGINX_WORKER_SHUTDOWN_TIMEOUT: '2s' },
    });
    const latch = fake.holdStreams();
    try {
      const stream = await postChat(bounded);
      await firstEvent(stream);
      const reloadedAt = Date.now();
      await bounded.reload();
      const complete = await stream.ended;
      const held = Date.now() - reloadedAt;
      assert.equal(complete, false, 'cut off, not completed');
      assert.ok(!stream.text().includes('[DONE]'));
      assert.ok(held >= 1500 && held < 10_000, `the old worker closed the stream after ${held} ms`);
      assert.match(bounded.output(), /gracefully shutting down/);
    } finally {
      latch.release();
      await bounded.stop();
    }
  });
});
