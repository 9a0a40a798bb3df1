/**
 * Let's Encrypt's test CA from Debian's `pebble` package, on 127.0.0.1, with
 * `pebble-challtestsrv` as its DNS server, for the certd tests.
 *
 *   const ca = await startPebble({ httpPort: nginx.httpPort, domains: ['api.example.test'] });
 *   ACME_DIRECTORY=ca.directoryUrl, ACME_CA_FILE=ca.caFile
 *   await ca.rootPem(); ca.orderCount(); await ca.setResolves('x.test', false); await ca.stop();
 *
 * The package ships no TLS certificate for pebble itself, so one is made here with openssl (a
 * throwaway CA, `caFile`, and a certificate for 127.0.0.1/localhost it signs). Pebble's VA sends
 * HTTP-01 requests to `httpPort` (the test nginx's port-80 stand-in) at whatever the fake DNS
 * answers for the domain: 127.0.0.1 for `domains`, nothing for any other name.
 * `startCaProxy` puts a 127.0.0.1 HTTPS proxy in front that answers 429 to new orders or holds
 * finalization, and the certd fixture below runs certd and looks at what nginx serves.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CertStore } from '../../app/src/certs/store.ts';
import { buildCertificate } from '../../app/src/certs/x509.ts';
import { type NginxServer, startNginx } from './nginx.ts';
import {
  describeOutput,
  freePort,
  registerTempDir,
  type ServerProcess,
  spawnServer,
  waitFor,
} from './processes.ts';

export interface PebbleOptions {
  /** Port pebble's VA connects to for HTTP-01 (the test nginx's HTTP port). */
  httpPort: number;
  /** Names the fake DNS resolves to 127.0.0.1. */
  domains: string[];
  /** certificateValidityPeriod in seconds (pebble's default is about five years). */
  validitySeconds?: number;
}

export interface Pebble {
  readonly directoryUrl: string;
  /** PEM of the CA that signed pebble's own TLS certificate: ACME_CA_FILE. */
  readonly caFile: string;
  readonly tls: { caPem: string; certPem: string; keyPem: string };
  /** The root that issued certificates chain to (management API /roots/0). */
  rootPem(): Promise<string>;
  /** Orders pebble has accepted, from its log ("Added order ..."). */
  orderCount(): number;
  /** Makes the fake DNS answer (or stop answering) `name` with 127.0.0.1. */
  setResolves(name: string, resolves: boolean): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

function makeTlsMaterial(dir: string): Pebble['tls'] {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=gpt-proxy test TLS CA',
  ]);
  run(['req', '-new', ...ec, '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  run(
    [
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
    ].concat(['-extfile', 'ext.cnf', '-out', 'tls.pem']),
  );
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return { caPem: read('ca.pem'), certPem: read('tls.pem'), keyPem: read('tls.key') };
}

/** GET (or POST JSON) over HTTPS trusting only `ca`; resolves with status and body. */
export function httpsCall(
  url: string,
  ca: string,
  body?: unknown,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: body === undefined ? 'GET' : 'POST', timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function httpPost(url: string, body: unknown): Promise<number> {
  return fetch(url, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.status);
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-pebble-'));
  registerTempDir(dir);
  const tls = makeTlsMaterial(dir);
  const caFile = join(dir, 'ca.pem');
  const [acmePort, mgmtPort, dnsPort, dnsMgmtPort, tlsPort] = await Promise.all(
    [1, 2, 3, 4, 5].map(() => freePort()),
  );
  const dnsMgmt = `http://127.0.0.1:${dnsMgmtPort}`;
  const challtestsrv = await spawnServer(
    '/usr/bin/pebble-challtestsrv',
    ['-management', `127.0.0.1:${dnsMgmtPort}`, '-dns01', `127.0.0.1:${dnsPort}`].concat([
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv4',
      '',
      '-defaultIPv6',
      '',
    ]),
    { name: `challtestsrv:${dnsPort}` },
  );
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: join(dir, 'tls.pem'),
      privateKey: join(dir, 'tls.key'),
      httpPort: opts.httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
    },
  };
  writeFileSync(join(dir, 'pebble.json'), JSON.stringify(config));
  const pebble = await spawnServer(
    '/usr/bin/pebble',
    ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
    {
      name: `pebble:${acmePort}`,
      env: { PATH: process.env.PATH, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0' },
      maxOutputBytes: 8 * 1024 * 1024,
    },
  );
  const stop = async () => {
    await pebble.stop('SIGTERM', 5_000);
    await challtestsrv.stop('SIGTERM', 5_000);
  };
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const setResolves = async (name: string, resolves: boolean) => {
    const status = resolves
      ? await httpPost(`${dnsMgmt}/add-a`, { host: name, addresses: ['127.0.0.1'] })
      : await httpPost(`${dnsMgmt}/clear-a`, { host: name });
    if (status !== 200) throw new Error(`challtestsrv answered ${status} for ${name}`);
  };
  try {
    await waitFor(
      async () => {
        for (const p of [pebble, challtestsrv] as ServerProcess[]) {
          if (p.exitInfo) throw new Error(`${p.name} exited${describeOutput(p)}`);
        }
        return (await httpsCall(directoryUrl, tls.caPem)).status === 200;
      },
      { timeoutMs: 15_000, what: 'pebble directory' },
    );
    await waitFor(() => fetch(`${dnsMgmt}/`).then(() => true), { timeoutMs: 15_000, what: 'challtestsrv' });
    for (const name of opts.domains) await setResolves(name, true);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    directoryUrl,
    caFile,
    tls,
    rootPem: async () => {
      const res = await httpsCall(`https://127.0.0.1:${mgmtPort}/roots/0`, tls.caPem);
      if (res.status !== 200) throw new Error(`pebble /roots/0 answered ${res.status}`);
      return res.body;
    },
    orderCount: () => pebble.output().match(/Added order/g)?.length ?? 0,
    setResolves,
    output: () => `${pebble.output()}\n--- challtestsrv ---\n${challtestsrv.output()}`,
    stop,
  };
}

export interface CaProxy {
  readonly directoryUrl: string;
  /**
   * Requests seen: time, method, path, the status the proxy answered and, for an error, the ACME
   * problem type (pebble turns down 5% of nonces on purpose, and acme-client retries those itself).
   */
  readonly requests: Array<{ at: number; method: string; path: string; status: number; problem?: string }>;
  close(): Promise<void>;
}

export interface CaProxyOptions {
  /** Answer the first `count` new orders with 429 and this Retry-After, as Let's Encrypt does at a limit. */
  rateLimit?: { retryAfterSeconds: number; count?: number };
  /** Hold finalize requests this long, to keep an order under way. */
  delayFinalizeMs?: number;
  /** Go away for good once the first challenge request is answered: the CA vanishes while an order polls. */
  goneAfterChallenge?: boolean;
}

/**
 * An HTTPS proxy on 127.0.0.1 in front of pebble (same TLS certificate, so ACME_CA_FILE still
 * fits) that can answer 429 to new orders or slow finalization down. Pebble builds its URLs
 * from the Host header, which the proxy passes on, so the client keeps talking to the proxy.
 */
export async function startCaProxy(pebble: Pebble, opts: CaProxyOptions): Promise<CaProxy> {
  const target = new URL(pebble.directoryUrl);
  const requests: CaProxy['requests'] = [];
  let limited = 0;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const server = createServer({ cert: pebble.tls.certPem, key: pebble.tls.keyPem }, (req, res) => {
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (
      opts.rateLimit &&
      method === 'POST' &&
      path === '/order-plz' &&
      limited < (opts.rateLimit.count ?? 1)
    ) {
      limited++;
      requests.push({ at: Date.now(), method, path, status: 429 });
      req.resume();
      res.writeHead(429, {
        'content-type': 'application/problem+json',
        'retry-after': String(opts.rateLimit.retryAfterSeconds),
      });
      res.end(
        JSON.stringify({
          type: 'urn:ietf:params:acme:error:rateLimited',
          detail: 'too many new orders recently (test proxy)',
          status: 429,
        }),
      );
      return;
    }
    const delay = path.startsWith('/finalize-order/') ? (opts.delayFinalizeMs ?? 0) : 0;
    const forward = () => {
      const upstream = request(
        { host: '127.0.0.1', port: target.port, method, path, headers: req.headers, ca: pebble.tls.caPem },
        (up) => {
          const at = Date.now();
          const status = up.statusCode ?? 0;
          res.writeHead(status || 502, up.headers);
          up.pipe(res);
          if (opts.goneAfterChallenge && path.startsWith('/chalZ/')) res.on('finish', () => void close());
          if (status < 400) {
            requests.push({ at, method, path, status });
            return;
          }
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('end', () => {
            let problem: string | undefined;
            try {
              problem = (JSON.parse(Buffer.concat(chunks).toString()) as { type?: string }).type;
            } catch {
              // not JSON: no problem type to record
            }
            requests.push({ at, method, path, status, ...(problem ? { problem } : {}) });
          });
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (delay > 0) setTimeout(forward, delay);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    directoryUrl: `https://127.0.0.1:${port}/dir`,
    requests,
    close,
  };
}

// ---------------------------------------------------------------------------
// certd fixture: directories, the certd process, what nginx serves.

export const DOMAIN = 'api.gpt-proxy.test';
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A certificate pair for `domain` from a throwaway CA (leaf + CA in the chain), with the validity
 * window given: stands for a CA-issued certificate already in place (e.g. one close to expiry).
 */
export function caIssuedPair(
  domain: string,
  { notBefore, notAfter }: { notBefore: Date; notAfter: Date },
): { chainPem: string; keyPem: string; serial: string } {
  const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const caName = 'gpt-proxy earlier test CA';
  const caPem = buildCertificate({
    commonName: caName,
    subjectKey: caKey,
    issuerName: caName,
    issuerKey: caKey,
    isCa: true,
    notBefore,
    notAfter: new Date(notAfter.getTime() + 86_400_000),
  });
  const leafPem = buildCertificate({
    commonName: domain,
    subjectKey: leafKey,
    issuerName: caName,
    issuerKey: caKey,
    notBefore,
    notAfter,
  });
  return {
    chainPem: leafPem + caPem,
    keyPem: leafKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    serial: new X509Certificate(leafPem).serialNumber.toUpperCase(),
  };
}

/** A CERT_DIR and an ACME_WEBROOT that nginx's workers (nobody) can read. */
export function certdDirs(): { base: string; certDir: string; webroot: string } {
  const base = mkdtempSync(join(tmpdir(), 'gpt-proxy-certd-'));
  registerTempDir(base);
  chmodSync(base, 0o755);
  const webroot = join(base, 'acme');
  mkdirSync(webroot, { mode: 0o755 });
  return { base, certDir: join(base, 'certs'), webroot };
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface CertdProcess {
  readonly pid: number;
  readonly metricsPort: number;
  readonly exitInfo: ServerProcess['exitInfo'];
  readonly exited: ServerProcess['exited'];
  output(): string;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): ReturnType<ServerProcess['stop']>;
  /** certd's JSON log lines, parsed. */
  logs(): LogLine[];
  /** The value of one metric series (the line starting with `series `), or undefined. */
  metric(series: string): Promise<number | undefined>;
}

/** JSON log lines of a pino program's output. */
export function parseLogs(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Starts certd from source (`node scripts/certd.ts`) with exactly `env` (plus PATH, HOST, METRICS_PORT). */
export async function startCertd(env: Record<string, string>, args: string[] = []): Promise<CertdProcess> {
  const metricsPort = await freePort();
  const proc = await spawnServer(process.execPath, ['scripts/certd.ts', ...args], {
    name: 'certd',
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', METRICS_PORT: String(metricsPort), ...env },
    maxOutputBytes: 4 * 1024 * 1024,
  });
  return {
    pid: proc.pid,
    metricsPort,
    get exitInfo() {
      return proc.exitInfo;
    },
    exited: proc.exited,
    output: () => proc.output(),
    stop: (signal, timeoutMs) => proc.stop(signal, timeoutMs),
    logs: () => parseLogs(proc.output()),
    metric: async (series) => {
      const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    },
  };
}

/** The leaf certificate nginx presents for `servername` on 127.0.0.1:port, unverified. */
export function servedCertificate(port: number, servername: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert);
      else reject(new Error('no peer certificate'));
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

/** Serial (upper-case hex) of what nginx serves for `servername`. */
export async function servedSerial(port: number, servername: string): Promise<string> {
  return (await servedCertificate(port, servername)).serialNumber.toUpperCase();
}

/** Connects trusting only `rootPem`: resolves with the leaf's serial if chain and name verify. */
export function verifiedSerial(port: number, servername: string, rootPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port, servername, ca: rootPem, rejectUnauthorized: true },
      () => {
        const serial = socket.getPeerX509Certificate()?.serialNumber.toUpperCase() ?? '';
        socket.end();
        resolve(serial);
      },
    );
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

/** Every file below `dir` (relative path → content), except the order record and the lock. */
export function snapshotFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === 'orders.json' || entry.name.startsWith('.lock')) continue;
    const path = join(entry.parentPath, entry.name);
    out[path.slice(dir.length + 1)] = readFileSync(path, 'utf8');
  }
  return out;
}

/** The files of `before` as they are now under `dir`: equal to `before` when none was deleted or changed. */
export function sameFilesNow(
  before: Record<string, string>,
  dir: string,
): Record<string, string | undefined> {
  const now = snapshotFiles(dir);
  return Object.fromEntries(Object.keys(before).map((name) => [name, now[name]]));
}

/** The log lines of failed orders. */
export function orderFailures(certd: CertdProcess): LogLine[] {
  return certd.logs().filter((l) => String(l.msg).startsWith('certificate order failed'));
}

export interface Scene {
  ca: Pebble;
  nginx: NginxServer;
  certDir: string;
  webroot: string;
  /** The CA-issued pair in place before certd starts (in live/ and last-good/, as certd leaves it). */
  seed: ReturnType<typeof caIssuedPair>;
  /** certd's environment for this scene. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * A pebble, an nginx serving a certificate from an earlier CA (due for renewal: 1 day left of
 * 30, or not due: 89 of 90) and the environment for certd: the starting point of a fault test.
 * `resolves: false` leaves the domain out of the fake DNS.
 */
export async function startScene({ domain = DOMAIN, due = true, resolves = true } = {}): Promise<Scene> {
  const { certDir, webroot } = certdDirs();
  const now = Date.now();
  const day = 86_400_000;
  const window = due
    ? { notBefore: new Date(now - 29 * day), notAfter: new Date(now + day) }
    : { notBefore: new Date(now - day), notAfter: new Date(now + 89 * day) };
  const seed = caIssuedPair(domain, window);
  const store = new CertStore(certDir);
  await store.prepare();
  await store.install(seed);
  // nginx first, on a port it takes at once: a port picked early and bound only after pebble has
  // started can meanwhile go to a server of a test running alongside, which then answers pebble's
  // validation (seen once: an HTTPS server's 400 to plain HTTP, where nginx's 404 was expected).
  const nginx = await startNginx({ appUpstream: '127.0.0.1:9', certDir, webroot });
  let ca: Pebble;
  try {
    ca = await startPebble({ httpPort: nginx.httpPort, domains: resolves ? [domain] : [] });
  } catch (err) {
    await nginx.stop();
    throw err;
  }
  const env = {
    DOMAIN: domain,
    ACME_DIRECTORY: ca.directoryUrl,
    ACME_CA_FILE: ca.caFile,
    CERT_DIR: certDir,
    ACME_WEBROOT: webroot,
  };
  return {
    ca,
    nginx,
    certDir,
    webroot,
    seed,
    env,
    stop: async () => {
      await nginx.stop();
      await ca.stop();
    },
  };
}
