import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { challengePreflight, PreflightPatience } from '../../app/src/certs/preflight.ts';
import { type NginxServer, startNginx, writeSelfSignedCert } from '../helpers/nginx.ts';
import { freePort, registerTempDir } from '../helpers/processes.ts';

describe('certd: the HTTP-01 preflight before an order', () => {
  let edge: NginxServer;
  let webroot: string;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-preflight-'));
    registerTempDir(dir);
    chmodSync(dir, 0o755);
    webroot = join(dir, 'acme');
    mkdirSync(webroot, { mode: 0o755 });
    const certDir = join(dir, 'certs');
    writeSelfSignedCert(certDir);
    edge = await startNginx({ appUpstream: '127.0.0.1:9', certDir, webroot });
  });
  after(async () => {
    await edge?.stop();
  });

  it('finds the token served through the real nginx, and leaves no file behind', async () => {
    assert.deepEqual(await challengePreflight('localhost', webroot, edge.httpPort), { served: true });
    assert.deepEqual(readdirSync(join(webroot, '.well-known', 'acme-challenge')), []);
  });

  it('reports a webroot nobody serves yet, and a name that does not resolve', async () => {
    const closed = await challengePreflight('localhost', webroot, await freePort());
    assert.equal(closed.served, false);
    assert.match(closed.served === false ? closed.why : '', /not reachable from here \(ECONNREFUSED\)/);
    const unknown = await challengePreflight('no-such-host.invalid', webroot);
    assert.equal(unknown.served, 'unknown');
  });

  it('holds an order back while nginx starts, but not forever', () => {
    const patience = new PreflightPatience(120_000);
    const failing = { served: false as const, why: 'x' };
    assert.equal(patience.holdBack(failing, 0), true);
    assert.equal(patience.holdBack(failing, 119_000), true);
    assert.equal(patience.holdBack(failing, 120_000), false, 'after two minutes, order anyway');
    assert.equal(patience.holdBack({ served: true }, 121_000), false);
    assert.equal(patience.holdBack(failing, 122_000), true, 'a new failure starts the clock again');
    assert.equal(patience.holdBack({ served: 'unknown', why: 'y' }, 123_000), false);
  });
});
