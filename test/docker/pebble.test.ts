// The pebble image: pebble serves its ACME directory over TLS with the certificate the image
// made (valid for `pebble`, `localhost` and 127.0.0.1, signed by /test/certs/pebble.minica.pem)
// and its management API, and pebble-challtestsrv answers its management API; both from Debian's
// package, reached from the host only through ports published on 127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { httpsGet } from '../helpers/https-get.ts';
import { waitFor } from '../helpers/processes.ts';
import { waitForLog } from './probes.ts';
import type { ImageTags } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();

describe('pebble image', { skip: bed.skip }, () => {
  let tags: ImageTags;

  before(async () => {
    tags = await bed.images(['pebble']);
    await bed.network('acme-net');
  });
  after(() => bed.stop());

  test('pebble serves its directory and roots over TLS that pebble.minica.pem vouches for', async () => {
    const pebble = await bed.run({
      name: 'pebble',
      image: tags.pebble,
      network: 'acme-net',
      aliases: ['pebble'],
      env: { PEBBLE_VA_NOSLEEP: '1' },
      publish: [14000, 15000],
    });
    await waitForLog(pebble, /Listening on: 0\.0\.0\.0:14000/);
    const ca = (await pebble.exec(['cat', '/test/certs/pebble.minica.pem'])).stdout;
    const acmePort = await pebble.hostPort(14000);
    const dir = await waitFor(() => httpsGet(acmePort, '/dir', ca, 'pebble'), {
      timeoutMs: 30_000,
      what: 'pebble /dir',
    });
    assert.equal(dir.status, 200);
    const directory = JSON.parse(dir.body) as Record<string, unknown>;
    assert.match(String(directory.newOrder), /^https:\/\/127\.0\.0\.1:\d+\/order-plz$/);
    const roots = await httpsGet(await pebble.hostPort(15000), '/roots/0', ca, 'localhost');
    assert.equal(roots.status, 200);
    assert.match(roots.body, /^-----BEGIN CERTIFICATE-----/);
    await assert.rejects(httpsGet(acmePort, '/dir', ca, 'elsewhere.test'), /altnames|Hostname/i);
  });

  test('pebble-challtestsrv answers its management API', async () => {
    const challtestsrv = await bed.run({
      name: 'challtestsrv',
      image: tags.pebble,
      network: 'acme-net',
      aliases: ['challtestsrv'],
      publish: [8055],
      command: [
        'pebble-challtestsrv',
        '-management',
        ':8055',
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
      ],
    });
    const port = await challtestsrv.hostPort(8055);
    await waitFor(
      async () => {
        const response = await fetch(`http://127.0.0.1:${port}/set-default-ipv4`, {
          method: 'POST',
          body: JSON.stringify({ ip: '10.213.99.9' }),
          signal: AbortSignal.timeout(5_000),
        });
        return response.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'challtestsrv /set-default-ipv4' },
    );
  });
});
