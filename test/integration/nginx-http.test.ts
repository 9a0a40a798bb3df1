// HTTP behaviour of the edge in front of a recording backend: port 80 (308 and ACME webroot),
// forwarded headers and X-Request-Id, the access log, the body limit, the admin allow-list,
// nginx's own errors in the API's JSON shape, and the internal stub_status listener.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { edgeRequest, type NginxServer, startNginx, writeSelfSignedCert } from '../helpers/nginx.ts';
import { freePort, registerTempDir, waitFor } from '../helpers/processes.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

const seen: Seen[] = [];
let backend: Server;
let base: string;
let webroot: string;
let open: NginxServer; // defaults: no admin allow-list, 20 MiB bodies
let strict: NginxServer; // 1 KiB bodies, admin only from 10.0.0.0/8
let dead: NginxServer; // admin allowed from loopback, app not running
const edges = () => [open, strict, dead];

const json = (body: string) => JSON.parse(body) as { error: { code: string; type: string } };

describe('nginx HTTP edge', () => {
  before(async () => {
    backend = createServer((req, res) => {
      let bodyBytes = 0;
      req.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes });
        const echoId = req.headers['x-echo-request-id'];
        if (echoId === 'yes') res.setHeader('x-request-id', String(req.headers['x-request-id']));
        res.setHeader('content-type', 'application/json');
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const app = `127.0.0.1:${(backend.address() as AddressInfo).port}`;

    base = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-http-'));
    registerTempDir(base);
    chmodSync(base, 0o755);
    webroot = join(base, 'www');
    mkdirSync(join(webroot, '.well-known', 'acme-challenge'), { recursive: true, mode: 0o755 });
    const certDir = join(base, 'certs');
    writeSelfSignedCert(certDir);
    const common = { certDir, webroot, watchCerts: false };
    [open, strict, dead] = await Promise.all([
      startNginx({ ...common, appUpstream: app }),
      startNginx({
        ...common,
        appUpstream: app,
        env: { MAX_BODY_BYTES: '1024', NGINX_ADMIN_ALLOW_CIDRS: '10.0.0.0/8' },
      }),
      startNginx({
        ...common,
        appUpstream: `127.0.0.1:${await freePort()}`,
        env: { NGINX_ADMIN_ALLOW_CIDRS: '192.168.0.0/16, 127.0.0.1/32' },
      }),
    ]);
  });

  after(async () => {
    await Promise.all(edges().map((edge) => edge?.stop()));
    await new Promise((resolve) => backend?.close(resolve));
  });

  beforeEach(() => {
    seen.length = 0;
  });

  test('port 80 answers a POST with 308 to the same URL over HTTPS and never calls the app', async () => {
    const res = await fetch(`${open.httpUrl}/v1/chat/completions?api-version=2024-10-21`, {
      method: 'POST',
      body: '{"model":"gpt-4o"}',
      headers: { 'content-type': 'application/json' },
      redirect: 'manual',
    });
    assert.equal(res.status, 308);
    assert.equal(
      res.headers.get('location'),
      `https://127.0.0.1:${open.httpsPort}/v1/chat/completions?api-version=2024-10-21`,
    );
    const stubStatus = await fetch(`${open.httpUrl}/stub_status`, { redirect: 'manual' });
    assert.equal(stubStatus.status, 308);
    assert.equal(seen.length, 0);
  });

  test('port 80 serves ACME challenge files from the webroot, and nothing else from there', async () => {
    const file = join(webroot, '.well-known', 'acme-challenge', 'tok-3f9A_b');
    writeFileSync(file, 'tok-3f9A_b.thumbprint');
    chmodSync(file, 0o644);
    const res = await fetch(`${open.httpUrl}/.well-known/acme-challenge/tok-3f9A_b`, { redirect: 'manual' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'tok-3f9A_b.thumbprint');
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    for (const path of ['/.well-known/acme-challenge/missing', '/.well-known/acme-challenge/']) {
      const missing = await fetch(`${open.httpUrl}${path}`, { redirect: 'manual' });
      assert.equal(missing.status, 404, path);
    }
  });

  test('forwarded headers are set by nginx, whatever the client claims', async () => {
    const res = await edgeRequest(`${open.httpsUrl}/v1/models`, {
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-real-ip': '203.0.113.9',
        forwarded: 'for=203.0.113.9',
        'x-request-id': 'client-chosen',
        'x-forwarded-proto': 'http',
      },
    });
    assert.equal(res.status, 200);
    const headers = seen[0]?.headers ?? {};
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-real-ip'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-host'], '127.0.0.1');
    assert.equal(headers['x-forwarded-port'], String(open.httpsPort));
    assert.equal(headers.forwarded, undefined);
    assert.equal(headers.connection, undefined, 'no Connection: close towards the app');
    assert.match(String(headers['x-request-id']), /^[0-9a-f]{32}$/);
    assert.equal(
      res.headers['x-request-id'],
      headers['x-request-id'],
      'nginx adds its id when the app sends none',
    );
  });

  test("the app's X-Request-Id is passed back alone, not doubled", async () => {
    const res = await edgeRequest(`${open.httpsUrl}/v1/models`, { headers: { 'x-echo-request-id': 'yes' } });
    assert.equal(res.headers['x-request-id'], seen[0]?.headers['x-request-id']);
    assert.equal(typeof res.headers['x-request-id'], 'string', 'exactly one x-request-id header');
  });

  test('the access log has the request id and path but no credentials and no query string', async () => {
    const res = await edgeRequest(
      `${open.httpsUrl}/openai/deployments/gpt-4o/chat/completions?api-version=query-canary`,
      {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk-authorization-canary',
          'api-key': 'api-key-canary',
          cookie: 'session=cookie-canary',
          referer: 'https://example.com/?referer-canary',
        },
        body: '{"messages":[]}',
      },
    );
    assert.equal(res.status, 200);
    // nginx writes the entry once the response is sent, so it may trail the response a little.
    const entry = await waitFor(
      () => open.accessLog().find((e) => e.request_id === res.headers['x-request-id']),
      {
        timeoutMs: 5000,
        what: 'an access log entry with the response id',
      },
    );
    assert.equal(entry.path, '/openai/deployments/gpt-4o/chat/completions');
    assert.equal(entry.method, 'POST');
    assert.equal(entry.status, 200);
    const text = readFileSync(open.accessLogPath, 'utf8');
    for (const canary of [
      'authorization-canary',
      'api-key-canary',
      'cookie-canary',
      'referer-canary',
      'query-canary',
    ]) {
      assert.ok(!text.includes(canary), `${canary} must not be logged`);
    }
  });

  test('bodies over MAX_BODY_BYTES get a JSON 413 from nginx; up to it they pass', async () => {
    const over = await edgeRequest(`${strict.httpsUrl}/v1/embeddings`, {
      method: 'POST',
      body: 'x'.repeat(1025),
    });
    assert.equal(over.status, 413);
    assert.equal(over.headers['content-type'], 'application/json');
    assert.deepEqual(json(over.body).error.code, 'request_too_large');
    assert.equal(json(over.body).error.type, 'invalid_request_error');
    assert.equal(over.headers['strict-transport-security'], 'max-age=63072000');
    assert.match(String(over.headers['x-request-id']), /^[0-9a-f]{32}$/);
    const chunked = await edgeRequest(`${strict.httpsUrl}/v1/embeddings`, {
      method: 'POST',
      headers: { 'transfer-encoding': 'chunked' },
      body: 'x'.repeat(4096),
    });
    assert.equal(chunked.status, 413);
    assert.equal(seen.length, 0);
    const fits = await edgeRequest(`${strict.httpsUrl}/v1/embeddings`, {
      method: 'POST',
      body: 'x'.repeat(1024),
    });
    assert.equal(fits.status, 200);
    assert.equal(seen[0]?.bodyBytes, 1024);
  });

  test('the admin allow-list: off by default, 403 JSON outside the list, however the path is spelt', async () => {
    assert.equal((await edgeRequest(`${open.httpsUrl}/admin/v1/users`)).status, 200);
    assert.equal(seen.length, 1);
    for (const path of [
      '/admin/v1/users',
      '/ADMIN/v1/keys',
      '/%61dmin/v1/keys',
      '//admin/v1/keys',
      '/v1/../admin/v1/keys',
    ]) {
      const denied = await edgeRequest(`${strict.httpsUrl}${path}`, { method: 'POST', body: '{}' });
      assert.equal(denied.status, 403, path);
      assert.equal(json(denied.body).error.code, 'insufficient_permissions');
    }
    assert.equal(seen.length, 1, 'denied requests never reach the app');
    assert.equal((await edgeRequest(`${strict.httpsUrl}/v1/models`)).status, 200);
  });

  test('inside the allow-list the admin API is proxied; an unreachable app is a JSON 502', async () => {
    const res = await edgeRequest(`${dead.httpsUrl}/admin/v1/users`);
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(json(res.body).error.code, 'upstream_error');
    assert.equal(json(res.body).error.type, 'server_error');
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f]{32}$/);
  });

  test('stub_status answers on the internal listener only; /metrics goes to the app port', async () => {
    const status = await fetch(`${open.statusUrl}/stub_status`);
    assert.equal(status.status, 200);
    assert.match(await status.text(), /^Active connections: \d+/);
    assert.equal((await fetch(`${open.statusUrl}/`)).status, 404);
    for (const path of ['/stub_status', '/metrics']) {
      const res = await edgeRequest(`${open.httpsUrl}${path}`);
      assert.equal(
        res.body,
        '{"ok":true}',
        `${path} on 443 is the app's, not nginx's or a metrics listener's`,
      );
    }
    assert.deepEqual(
      seen.map((s) => s.url),
      ['/stub_status', '/metrics'],
    );
  });
});
