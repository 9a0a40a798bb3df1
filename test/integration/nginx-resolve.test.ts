// App replicas found by name: nginx asks NGINX_RESOLVER per request (cached for
// NGINX_RESOLVER_VALID) instead of once at start, so it follows a replica that is replaced, the
// way Docker's DNS (127.0.0.11) drops a removed container's record and adds its successor's.
// Here a small DNS responder on 127.0.0.1 plays Docker's DNS for the name `app.test`.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { edgeRequest, type NginxServer, startNginx, writeSelfSignedCert } from '../helpers/nginx.ts';
import { freePort, registerTempDir, waitFor } from '../helpers/processes.ts';

const TYPE_A = 1;
const CLASS_IN = 1;

interface Question {
  id: number;
  flags: number;
  name: string;
  type: number;
  /** The question section as received, echoed in the answer. */
  raw: Buffer;
}

/** Reads the single question of a DNS query (RFC 1035 4.1); undefined when malformed. */
function parseQuery(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const length = msg[offset];
    if (length === undefined || length > 63) return undefined; // no compression in a question
    offset += 1;
    if (length === 0) break;
    if (offset + length > msg.length) return undefined;
    labels.push(msg.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > msg.length) return undefined;
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(offset),
    raw: msg.subarray(12, offset + 4),
  };
}

/** An authoritative answer: A records for a known name, NOERROR/empty for other types, else NXDOMAIN. */
function buildAnswer(q: Question, addresses: readonly string[] | undefined): Buffer {
  const answers = addresses !== undefined && q.type === TYPE_A ? addresses : [];
  const rcode = addresses === undefined ? 3 : 0;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0400 | 0x0080 | rcode, 2); // QR, opcode+RD, AA, RA
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((address) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the name in the question
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(600, 6); // Docker's TTL; nginx's `valid` overrides it
    rr.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => {
      rr[12 + i] = Number(octet);
    });
    return rr;
  });
  return Buffer.concat([header, q.raw, ...records]);
}

interface DnsResponder {
  port: number;
  records: Map<string, string[]>;
  queries: Array<{ name: string; type: number }>;
  close(): Promise<void>;
}

async function startDnsResponder(): Promise<DnsResponder> {
  const socket: Socket = createSocket('udp4');
  const records = new Map<string, string[]>();
  const queries: DnsResponder['queries'] = [];
  socket.on('message', (msg, peer) => {
    const q = parseQuery(msg);
    if (!q) return;
    queries.push({ name: q.name, type: q.type });
    socket.send(buildAnswer(q, records.get(q.name)), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    records,
    queries,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/** One app replica: answers every request with its name. */
async function startReplica(name: string, port: number): Promise<Server> {
  const server = createServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

const closeServer = (server: Server | undefined) =>
  new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

describe('nginx follows app replicas by name', () => {
  let dns: DnsResponder;
  let edge: NginxServer;
  let appPort: number;
  const replicas: Server[] = [];
  const answer = async () => (await edgeRequest(`${edge.httpsUrl}/health/live`)).body;

  before(async () => {
    dns = await startDnsResponder();
    appPort = await freePort();
    const base = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-resolve-'));
    registerTempDir(base);
    chmodSync(base, 0o755);
    writeSelfSignedCert(join(base, 'certs'));
    edge = await startNginx({
      appUpstream: `app.test:${appPort}`,
      certDir: join(base, 'certs'),
      webroot: base,
      watchCerts: false,
      env: { NGINX_RESOLVER: `127.0.0.1:${dns.port}`, NGINX_RESOLVER_VALID: '1s' },
    });
  });

  after(async () => {
    await edge?.stop();
    await Promise.all(replicas.map(closeServer));
    await dns?.close();
  });

  test('the DNS responder answers A queries the way a resolver expects', async () => {
    dns.records.set('probe.test', ['127.0.0.1']);
    const { Resolver } = await import('node:dns/promises');
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    assert.deepEqual(await resolver.resolve4('probe.test'), ['127.0.0.1']);
    await assert.rejects(resolver.resolve4('missing.test'), { code: 'ENOTFOUND' });
    dns.records.delete('probe.test');
  });

  test('nginx starts before any replica exists and answers a JSON 502 meanwhile', async () => {
    const res = await edgeRequest(`${edge.httpsUrl}/health/live`);
    assert.equal(res.status, 502);
    assert.match(res.body, /"code":"upstream_error"/);
    // The error log reaches us through a pipe, possibly just after the response.
    await waitFor(() => /app\.test could not be resolved \(3: Host not found\)/.test(edge.output()), {
      timeoutMs: 3_000,
      what: 'nginx logging the unresolvable name',
    });
  });

  test('a replica that appears, is replaced, and comes back is followed within NGINX_RESOLVER_VALID', async () => {
    replicas.push(await startReplica('replica-1', appPort));
    dns.records.set('app.test', ['127.0.0.1']);
    await waitFor(async () => (await answer()) === 'replica-1', {
      timeoutMs: 10_000,
      what: 'replica-1 via nginx',
    });

    // Docker removes the old container's record when it is replaced. A refused connection would
    // give a 502 as well, so the proof is nginx's own log: it asked again and got NXDOMAIN.
    const unresolved = () =>
      edge.output().split('app.test could not be resolved (3: Host not found)').length - 1;
    const unresolvedBefore = unresolved();
    const queriesBefore = dns.queries.length;
    await closeServer(replicas.pop());
    dns.records.delete('app.test');
    await waitFor(
      async () => (await answer()).includes('"code":"upstream_error"') && unresolved() > unresolvedBefore,
      { timeoutMs: 10_000, what: 'nginx resolving the name again and finding it gone' },
    );
    assert.ok(dns.queries.length > queriesBefore);

    replicas.push(await startReplica('replica-2', appPort));
    dns.records.set('app.test', ['127.0.0.1']);
    await waitFor(async () => (await answer()) === 'replica-2', {
      timeoutMs: 10_000,
      what: 'replica-2 via nginx',
    });
    assert.ok(
      dns.queries.every((q) => q.type === TYPE_A),
      'only A queries (ipv6=off): the app listens on IPv4',
    );
  });
});
