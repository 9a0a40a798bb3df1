import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pace } from '../../bench/pacer.ts';

// The benchmark's latency generator frames answers itself, so it is checked against node:http:
// every request answered and counted, JSON and chunked bodies alike, failures seen for what they
// are, and the requests on the wire exactly as meant.

let server: Server;
let url: string;
const seen: Array<{ path: string; auth: string | undefined; body: string }> = [];

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, body });
      if (req.url === '/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      else if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"a":1}\n\n');
        setTimeout(() => res.end('data: [DONE]\n\n'), 20);
      } else if (req.url === '/error') res.writeHead(503).end('{"error":{}}');
      else req.socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const req = (path: string) => ({
  path,
  headers: { authorization: 'Bearer test', 'content-type': 'application/json' },
  body: '{"model":"m"}',
});

describe('bench pacer', () => {
  it('sends every request at the rate, with the headers and body given, and times each answer', async () => {
    seen.length = 0;
    const r = await pace({ name: 't', url }, req('/json'), 200, 1);
    assert.equal(r.sent, 200);
    assert.equal(r.failures, 0);
    assert.equal(r.latencies.length, 200);
    assert.ok(r.latencies.every((ms) => ms > 0 && ms < 1_000));
    assert.equal(seen.length, 200);
    assert.deepEqual(seen[0], { path: '/json', auth: 'Bearer test', body: '{"model":"m"}' });
  });

  it('waits for the end of a chunked body', async () => {
    const r = await pace({ name: 't', url }, req('/chunked'), 100, 0.5);
    assert.equal(r.failures, 0);
    assert.equal(r.latencies.length, 50);
    assert.ok(
      r.latencies.every((ms) => ms >= 15),
      'an answer counted before its last chunk',
    );
  });

  it('counts a non-2xx answer and a dropped connection as failures', async () => {
    const errors = await pace({ name: 't', url }, req('/error'), 100, 0.5);
    assert.equal(errors.sent, 50);
    assert.equal(errors.failures, 50);
    assert.equal(errors.latencies.length, 0);
    const dropped = await pace({ name: 't', url }, req('/drop'), 100, 0.3);
    assert.equal(dropped.failures, dropped.sent);
  });
});
