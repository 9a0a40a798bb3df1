// The render step and `nginx -t`: the templates render into a configuration Debian's nginx accepts,
// with the container's defaults when nothing is set, and bad values stop the render by name; and
// the other entrypoint scripts' own checks (the certificate wait, the watcher's interval).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  NGINX_SOURCE_DIR,
  renderNginxConfig,
  startNginx,
  testNginxConfig,
  writeSelfSignedCert,
} from '../helpers/nginx.ts';
import { registerTempDir } from '../helpers/processes.ts';

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-config-'));
  registerTempDir(dir);
  return dir;
}

/** Everything the tests set so that `nginx -t` touches nothing outside the scratch directory. */
function loopbackEnv(dir: string): Record<string, string> {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  return {
    APP_UPSTREAM: 'app.internal:8000',
    CERT_DIR: join(dir, 'certs'),
    ACME_WEBROOT: join(dir, 'www'),
    NGINX_LISTEN_ADDRESS: '127.0.0.1',
    NGINX_HTTP_PORT: '18080',
    NGINX_HTTPS_PORT: '18443',
    NGINX_STATUS_PORT: '18081',
    NGINX_RESOLVER: '127.0.0.1:5353',
    NGINX_PID_FILE: join(dir, 'nginx.pid'),
    NGINX_ACCESS_LOG: join(dir, 'access.log'),
    NGINX_TEMP_DIR: join(dir, 'tmp'),
  };
}

const conf = (dir: string, name: string) => readFileSync(join(dir, 'conf.d', name), 'utf8');

describe('nginx render step', () => {
  test('renders a configuration that passes nginx -t', () => {
    const dir = scratch();
    writeSelfSignedCert(join(dir, 'certs'));
    const rendered = renderNginxConfig(dir, {
      ...loopbackEnv(dir),
      NGINX_ADMIN_ALLOW_CIDRS: '10.0.0.0/8, fd00::/8',
    });
    assert.equal(rendered.status, 0, rendered.output);
    const checked = testNginxConfig(join(dir, 'nginx.conf'));
    assert.equal(checked.status, 0, checked.output);
    assert.match(checked.output, /syntax is ok/);
    assert.match(checked.output, /test is successful/);
  });

  test('with nothing set it renders the container defaults and leaves nginx variables alone', (t) => {
    const dir = scratch();
    const rendered = renderNginxConfig(dir, { NGINX_RESOLVER: '' });
    if (!/^nameserver\s/m.test(readFileSync('/etc/resolv.conf', 'utf8'))) {
      assert.equal(rendered.status, 1);
      assert.match(rendered.output, /NGINX_RESOLVER is empty and \/etc\/resolv.conf names no nameserver/);
      t.skip('no nameserver in /etc/resolv.conf to take the default resolver from');
      return;
    }
    assert.equal(rendered.status, 0, rendered.output);
    const https = conf(dir, '20-app-https.conf');
    assert.match(https, /listen 0\.0\.0\.0:443 ssl http2 default_server;/);
    assert.match(https, /ssl_certificate \/etc\/gpt-proxy\/certs\/live\/fullchain\.pem;/);
    assert.match(https, /set \$gpt_proxy_app app:8000;/);
    assert.match(https, /proxy_pass http:\/\/\$gpt_proxy_app;/);
    assert.match(https, /# no admin allow-list/);
    assert.match(https, /proxy_set_header X-Forwarded-Port 443;/);
    const http = conf(dir, '00-http.conf');
    assert.match(http, /client_max_body_size 20971520;/);
    assert.match(http, /resolver \S.* valid=5s ipv6=off;/, 'the resolver comes from /etc/resolv.conf');
    assert.match(http, /access_log \/var\/log\/nginx\/access\.log gpt_proxy;/);
    const redirect = conf(dir, '10-acme-redirect.conf');
    assert.match(redirect, /listen 0\.0\.0\.0:80 default_server;/);
    assert.match(redirect, /root \/var\/www\/acme;/);
    assert.match(redirect, /return 308 https:\/\/\$host\$request_uri;/);
    assert.match(conf(dir, '30-status.conf'), /listen 0\.0\.0\.0:8081;/);
    const main = conf(dir, 'main.d/process.conf');
    assert.match(main, /pid \/var\/run\/nginx\.pid;/);
    assert.match(main, /worker_shutdown_timeout 600s;/);
    for (const file of [
      '00-http.conf',
      '10-acme-redirect.conf',
      '20-app-https.conf',
      'main.d/process.conf',
    ]) {
      assert.doesNotMatch(conf(dir, file), /\$\{/, `${file} has an unrendered variable`);
    }
  });

  test('HTTP/2 is spelt the way the nginx in use expects it', () => {
    for (const [version, listen, directive] of [
      ['1.28.0', /listen 127\.0\.0\.1:18443 ssl default_server;/, /^\s*http2 on;$/m],
      ['1.25.1', /listen 127\.0\.0\.1:18443 ssl default_server;/, /^\s*http2 on;$/m],
      [
        '1.25.0',
        /listen 127\.0\.0\.1:18443 ssl http2 default_server;/,
        /# HTTP\/2 is switched on in the listen/,
      ],
    ] as const) {
      const dir = scratch();
      const fakeNginx = join(dir, 'nginx');
      writeFileSync(fakeNginx, `#!/bin/sh\necho "nginx version: nginx/${version}" >&2\n`, { mode: 0o755 });
      const rendered = renderNginxConfig(dir, { ...loopbackEnv(dir), NGINX_BIN: fakeNginx });
      assert.equal(rendered.status, 0, rendered.output);
      assert.match(conf(dir, '20-app-https.conf'), listen, version);
      assert.match(conf(dir, '20-app-https.conf'), directive, version);
    }
  });

  test('the redirect names DOMAIN and a published HTTPS port other than 443', () => {
    const dir = scratch();
    const rendered = renderNginxConfig(dir, {
      ...loopbackEnv(dir),
      DOMAIN: 'api.example.com',
      NGINX_PUBLIC_HTTPS_PORT: '8443',
    });
    assert.equal(rendered.status, 0, rendered.output);
    assert.match(
      conf(dir, '10-acme-redirect.conf'),
      /return 308 https:\/\/api\.example\.com:8443\$request_uri;/,
    );
    assert.match(conf(dir, '20-app-https.conf'), /proxy_set_header X-Forwarded-Port 8443;/);
  });

  test('owns conf.d: stale files such as the image default.conf are removed', () => {
    const dir = scratch();
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d', 'default.conf'), 'server { listen 80; }\n');
    const rendered = renderNginxConfig(dir, loopbackEnv(dir));
    assert.equal(rendered.status, 0, rendered.output);
    assert.deepEqual(readdirSync(join(dir, 'conf.d')).sort(), [
      '00-http.conf',
      '10-acme-redirect.conf',
      '20-app-https.conf',
      '30-status.conf',
      'main.d',
    ]);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['MAX_BODY_BYTES', '20m', /MAX_BODY_BYTES='20m' is not valid: a number of bytes/],
    ['APP_UPSTREAM', 'app', /APP_UPSTREAM='app' is not valid: the app replicas as NAME:PORT/],
    ['APP_UPSTREAM', 'app:8000; include /etc/passwd', /APP_UPSTREAM=.* is not valid/],
    [
      'NGINX_ADMIN_ALLOW_CIDRS',
      '10.0.0.0/8; allow all',
      /NGINX_ADMIN_ALLOW_CIDRS=.* is not valid: networks in CIDR/,
    ],
    ['NGINX_HTTPS_PORT', '70000', /NGINX_HTTPS_PORT='70000' is not valid: a TCP port number/],
    ['CERT_DIR', 'certs', /CERT_DIR='certs' is not valid: an absolute path/],
    ['NGINX_RESOLVER_VALID', '5 s', /NGINX_RESOLVER_VALID='5 s' is not valid/],
    ['CERT_DIR', '/etc\n}', /CERT_DIR must be a single line/],
  ];
  for (const [name, value, message] of invalid) {
    test(`refuses ${name}=${JSON.stringify(value)} and names the variable`, () => {
      const dir = scratch();
      const rendered = renderNginxConfig(dir, { ...loopbackEnv(dir), [name]: value });
      assert.equal(rendered.status, 1);
      assert.match(rendered.output, message);
    });
  }
});

describe('nginx entrypoint scripts', () => {
  test('nginx waits for the certificate certd writes, then starts', async () => {
    const dir = scratch();
    chmodSync(dir, 0o755);
    const certDir = join(dir, 'certs');
    const later = setTimeout(() => writeSelfSignedCert(certDir), 1500);
    try {
      const edge = await startNginx({
        appUpstream: '127.0.0.1:9',
        certDir,
        webroot: dir,
        certWaitSeconds: 20,
        watchCerts: false,
      });
      await edge.stop();
    } finally {
      clearTimeout(later);
    }
  });

  test('without a certificate the wait ends with an error that points at certd', async () => {
    const dir = scratch();
    chmodSync(dir, 0o755);
    await assert.rejects(
      startNginx({
        appUpstream: '127.0.0.1:9',
        certDir: join(dir, 'certs'),
        webroot: dir,
        certWaitSeconds: 1,
      }),
      /no certificate in .*\/certs\/live after 1s; certd writes one there first/,
    );
  });

  test('the watcher refuses an interval that is not whole seconds', () => {
    const result = spawnSync(
      'sh',
      [join(NGINX_SOURCE_DIR, 'docker-entrypoint.d', '40-gpt-proxy-cert-watcher.sh'), 'run'],
      {
        env: { PATH: process.env.PATH, NGINX_CERT_WATCH_INTERVAL: '0.5' },
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    assert.equal(result.status, 1);
    assert.match(result.stderr, /NGINX_CERT_WATCH_INTERVAL='0.5' is not valid/);
  });
});
