/**
 * A real nginx (Debian's /usr/sbin/nginx, run as root) serving the repository's nginx/ config on
 * 127.0.0.1, prepared the way the container prepares it: the same render step
 * (nginx/docker-entrypoint.d/20-envsubst-on-templates.sh), the same certificate wait (30-...) and
 * the same certificate watcher (40-... run, polling every second instead of every five).
 *
 *   writeSelfSignedCert(certDir);                     // nginx needs CERT_DIR/live/*.pem to start
 *   const edge = await startNginx({ appUpstream: '127.0.0.1:8000', certDir, webroot });
 *   await fetch(`${edge.httpUrl}/.well-known/acme-challenge/TOKEN`);  // ACME_WEBROOT file
 *   edge.httpsUrl ...; await edge.reload(); edge.accessLog(); await edge.stop();
 *
 * Stable interface, also used by the certd tests. Workers run as `nobody`: the webroot and its
 * parent directories must be world-searchable and challenge files world-readable (0755 / 0644,
 * as in the container, where nginx's workers are not root either); startNginx checks the
 * directories. certDir is read by the master (root) only. `env` overrides any variable the render
 * step reads (MAX_BODY_BYTES, NGINX_ADMIN_ALLOW_CIDRS, NGINX_RESOLVER, ... - see nginx/README.md);
 * NGINX_RESOLVER defaults to 127.0.0.1:53, never the host's resolvers. Reload tracking reads
 * nginx's notice-level log (nginx.conf's `error_log stderr notice`).
 * nginx and the watcher run in their own process groups, killed as a whole on stop() and when
 * this process exits, so no worker outlives a test.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  describeOutput,
  freePort,
  registerTempDir,
  type ServerProcess,
  spawnServer,
  waitFor,
} from './processes.ts';

export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const NGINX_SOURCE_DIR = fileURLToPath(new URL('../../nginx/', import.meta.url));
const ENTRYPOINT_DIR = join(NGINX_SOURCE_DIR, 'docker-entrypoint.d');
export const RENDER_SCRIPT = join(ENTRYPOINT_DIR, '20-envsubst-on-templates.sh');
const WAIT_SCRIPT = join(ENTRYPOINT_DIR, '30-gpt-proxy-wait-for-certificate.sh');
const WATCH_SCRIPT = join(ENTRYPOINT_DIR, '40-gpt-proxy-cert-watcher.sh');

export interface StartNginxOptions {
  /** The app replicas as HOST:PORT (APP_UPSTREAM); a name is resolved through NGINX_RESOLVER. */
  appUpstream: string;
  /** CERT_DIR: live/fullchain.pem and live/privkey.pem must exist (or appear within certWaitSeconds). */
  certDir: string;
  /** ACME_WEBROOT, served on the HTTP port under /.well-known/acme-challenge/. */
  webroot: string;
  httpPort?: number;
  httpsPort?: number;
  statusPort?: number;
  /** Extra or overriding variables for the render step. */
  env?: Record<string, string>;
  /** Run the certificate watcher (default true). */
  watchCerts?: boolean;
  certWatchIntervalSeconds?: number;
  /** How long to wait for the certificate files before giving up (default 0). */
  certWaitSeconds?: number;
}

export interface NginxServer {
  /** PID of the nginx master process. */
  readonly pid: number;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly statusPort: number;
  /** Working directory: nginx.conf, conf.d/, access.log, nginx.pid, tmp/. */
  readonly dir: string;
  readonly confPath: string;
  readonly accessLogPath: string;
  /** http://127.0.0.1:httpPort, https://127.0.0.1:httpsPort, http://127.0.0.1:statusPort */
  readonly httpUrl: string;
  readonly httpsUrl: string;
  readonly statusUrl: string;
  /**
   * Completed reloads since start, from nginx's own log: a new worker generation is running and
   * every worker of the one before has stopped accepting (is draining or gone).
   */
  reloads(): number;
  /** Resolves once reloads() >= n. */
  waitForReloads(n: number, timeoutMs?: number): Promise<void>;
  /** `nginx -s reload`, then waits for the new workers. */
  reload(): Promise<void>;
  /** Lines of the access log, parsed (JSON). */
  accessLog(): Array<Record<string, unknown>>;
  /** nginx's output (its error log), then the watcher's. */
  output(): string;
  watcherOutput(): string;
  stop(): Promise<void>;
}

export interface RenderResult {
  status: number | null;
  output: string;
}

/** Runs the render step: nginx/templates -> confDir/conf.d, nginx/nginx.conf -> confDir/nginx.conf. */
export function renderNginxConfig(confDir: string, env: Record<string, string>): RenderResult {
  copyFileSync(join(NGINX_SOURCE_DIR, 'nginx.conf'), join(confDir, 'nginx.conf'));
  const result = spawnSync('sh', [RENDER_SCRIPT], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NGINX_BIN, // asked for its version (how to spell HTTP/2)
      NGINX_ENVSUBST_TEMPLATE_DIR: join(NGINX_SOURCE_DIR, 'templates'),
      NGINX_ENVSUBST_OUTPUT_DIR: join(confDir, 'conf.d'),
      ...env,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

/** `nginx -t` on a rendered configuration. */
export function testNginxConfig(confPath: string): RenderResult {
  const result = spawnSync(NGINX_BIN, ['-t', '-c', confPath], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

/**
 * Writes a self-signed certificate for `commonName` (also as DNS and IP SANs) to
 * certDir/live/fullchain.pem and privkey.pem, each through a temp file and a rename, as certd
 * does. Returns the certificate PEM.
 */
export function writeSelfSignedCert(
  certDir: string,
  { commonName = '127.0.0.1', keyType = 'rsa' }: { commonName?: string; keyType?: 'rsa' | 'ec' } = {},
): string {
  const live = join(certDir, 'live');
  mkdirSync(live, { recursive: true });
  const tmpKey = join(live, `.privkey.${process.pid}.tmp`);
  const tmpCert = join(live, `.fullchain.${process.pid}.tmp`);
  const keyArgs =
    keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const san = /^[0-9.]+$/.test(commonName) ? `IP:${commonName}` : `DNS:${commonName}`;
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      ...keyArgs,
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      tmpKey,
      '-out',
      tmpCert,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
  renameSync(tmpKey, join(live, 'privkey.pem'));
  renameSync(tmpCert, join(live, 'fullchain.pem'));
  return readFileSync(join(live, 'fullchain.pem'), 'utf8');
}

// Process groups (nginx master + workers, watcher + its sleep/nginx -t) to kill on exit.
const processGroups = new Set<number>();
let groupExitHookInstalled = false;

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
  processGroups.delete(pgid);
}

function killAllGroups(): void {
  for (const pgid of processGroups) killGroup(pgid);
}

/** Starts `command` as the leader of a new session (setsid keeps its PID), killed with its group. */
async function spawnGroup(name: string, command: string, args: string[], env: NodeJS.ProcessEnv) {
  const proc = await spawnServer('setsid', [command, ...args], { name, env });
  processGroups.add(proc.pid);
  if (!groupExitHookInstalled) {
    // processes.ts kills registered PIDs (the masters) on exit and on fatal signals, then re-raises
    // the signal; the workers are not registered, so their groups go first.
    groupExitHookInstalled = true;
    process.on('exit', killAllGroups);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      process.prependListener(signal, killAllGroups);
  }
  return proc;
}

async function stopGroup(proc: ServerProcess, signal: NodeJS.Signals): Promise<void> {
  await proc.stop(signal, 10_000);
  killGroup(proc.pid);
}

/** Workers run as nobody: every directory down to the webroot must be searchable by others. */
function assertWorldSearchable(dir: string): void {
  for (let current = resolve(dir); ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) {
      throw new Error(
        `startNginx: ${current} is not searchable by others (chmod o+x); nginx's workers cannot serve ${dir}`,
      );
    }
    if (current === dirname(current)) return;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/**
 * Follows nginx's error log (notice level) to tell when a reload has taken effect: the master
 * logs "start worker processes" and one "start worker process PID" per new worker; an old worker
 * logs "PID#TID: gracefully shutting down" once it stops accepting, and the master "worker
 * process PID exited". Until every old worker stopped accepting, a new connection may still get
 * the old configuration (and the old certificate).
 */
class WorkerGenerations {
  #generations: number[][] = [];
  #draining = new Set<number>();
  #partial = '';

  push(text: string): void {
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      const started = /start worker process (\d+)/.exec(line);
      const draining =
        /(\d+)#\d+: gracefully shutting down/.exec(line) ?? /worker process (\d+) exited/.exec(line);
      if (line.includes('start worker processes')) this.#generations.push([]);
      else if (started) this.#generations.at(-1)?.push(Number(started[1]));
      else if (draining) this.#draining.add(Number(draining[1]));
    }
  }

  completedReloads(): number {
    let completed = 0;
    for (let i = 1; i < this.#generations.length; i++) {
      const previous = this.#generations[i - 1] ?? [];
      if (previous.length > 0 && previous.every((pid) => this.#draining.has(pid))) completed = i;
    }
    return completed;
  }
}

/** Renders the config into a fresh directory, starts nginx (and the watcher) and waits until it listens. */
export async function startNginx(opts: StartNginxOptions): Promise<NginxServer> {
  assertWorldSearchable(opts.webroot);
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-'));
  registerTempDir(dir);
  chmodSync(dir, 0o755); // workers (nobody) write request bodies below tmp/
  mkdirSync(join(dir, 'tmp'));
  // freePort closes the port it found, so two calls can return the same one: keep them apart.
  const taken = new Set([opts.httpPort, opts.httpsPort, opts.statusPort]);
  const another = async () => {
    for (let tries = 0; tries < 10; tries++) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
    throw new Error('startNginx: no distinct free port in 10 tries');
  };
  const httpPort = opts.httpPort ?? (await another());
  const httpsPort = opts.httpsPort ?? (await another());
  const statusPort = opts.statusPort ?? (await another());
  const confPath = join(dir, 'nginx.conf');
  const accessLogPath = join(dir, 'access.log');
  const env: Record<string, string> = {
    APP_UPSTREAM: opts.appUpstream,
    CERT_DIR: opts.certDir,
    ACME_WEBROOT: opts.webroot,
    NGINX_LISTEN_ADDRESS: '127.0.0.1',
    NGINX_HTTP_PORT: String(httpPort),
    NGINX_HTTPS_PORT: String(httpsPort),
    NGINX_PUBLIC_HTTPS_PORT: String(httpsPort),
    NGINX_STATUS_PORT: String(statusPort),
    NGINX_RESOLVER: '127.0.0.1:53',
    NGINX_WORKER_PROCESSES: '2',
    NGINX_PID_FILE: join(dir, 'nginx.pid'),
    NGINX_ACCESS_LOG: accessLogPath,
    NGINX_TEMP_DIR: join(dir, 'tmp'),
    NGINX_CERT_WAIT_SECONDS: String(opts.certWaitSeconds ?? 0),
    NGINX_CERT_WATCH_INTERVAL: String(opts.certWatchIntervalSeconds ?? 1),
    NGINX_BIN,
    NGINX_CONF: confPath,
    ...opts.env,
  };
  const rendered = renderNginxConfig(dir, env);
  if (rendered.status !== 0) throw new Error(`startNginx: rendering failed:\n${rendered.output}`);
  // Asynchronous, so that this process can write the certificate (or run certd) meanwhile.
  await new Promise<void>((resolveWait, reject) => {
    execFile(
      'sh',
      [WAIT_SCRIPT],
      { env: { PATH: process.env.PATH, ...env }, timeout: ((opts.certWaitSeconds ?? 0) + 30) * 1000 },
      (err, _stdout, stderr) =>
        err ? reject(new Error(`startNginx: ${stderr || err.message}`)) : resolveWait(),
    );
  });

  const generations = new WorkerGenerations();
  const nginx = await spawnGroup(`nginx:${httpsPort}`, NGINX_BIN, ['-c', confPath, '-g', 'daemon off;'], {
    PATH: process.env.PATH,
  });
  nginx.child.stderr?.on('data', (chunk: Buffer) => generations.push(chunk.toString('utf8')));
  const watcher =
    opts.watchCerts === false
      ? undefined
      : await spawnGroup(`cert-watcher:${httpsPort}`, 'sh', [WATCH_SCRIPT, 'run'], {
          PATH: process.env.PATH,
          ...env,
        });

  const stop = async () => {
    if (watcher) await stopGroup(watcher, 'SIGTERM');
    await stopGroup(nginx, 'SIGTERM');
  };
  try {
    await waitFor(
      async () => {
        if (nginx.exitInfo) throw new Error(`nginx exited${describeOutput(nginx)}`);
        return (await portOpen(httpsPort)) && (await portOpen(httpPort)) && (await portOpen(statusPort));
      },
      { timeoutMs: 15_000, what: `nginx listening on ${httpPort}/${httpsPort}/${statusPort}` },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const server: NginxServer = {
    pid: nginx.pid,
    httpPort,
    httpsPort,
    statusPort,
    dir,
    confPath,
    accessLogPath,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    httpsUrl: `https://127.0.0.1:${httpsPort}`,
    statusUrl: `http://127.0.0.1:${statusPort}`,
    reloads: () => generations.completedReloads(),
    waitForReloads: async (n, timeoutMs = 15_000) => {
      await waitFor(() => server.reloads() >= n, {
        timeoutMs,
        what: `nginx reload #${n}${describeOutput(nginx)}`,
      });
    },
    async reload() {
      const before = server.reloads();
      const result = spawnSync(NGINX_BIN, ['-c', confPath, '-s', 'reload'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (result.status !== 0) throw new Error(`nginx -s reload failed: ${result.stderr}`);
      await server.waitForReloads(before + 1);
    },
    accessLog() {
      let text = '';
      try {
        text = readFileSync(accessLogPath, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    output: () => `${nginx.output()}${watcher ? `\n--- cert watcher ---\n${watcher.output()}` : ''}`,
    watcherOutput: () => watcher?.output() ?? '',
    stop,
  };
  return server;
}

// ---------------------------------------------------------------------------
// Clients: HTTPS through nginx without certificate checks (tests swap certificates freely).

export interface EdgeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** How long to wait for the response headers (default 15 s); the request is then destroyed. */
  timeoutMs?: number;
}

/** An HTTPS response read as it arrives: text() grows chunk by chunk until `ended` resolves. */
export interface EdgeStream {
  status: number;
  headers: IncomingHttpHeaders;
  text(): string;
  /** Resolves when the response ended or the connection closed; true when it ended normally. */
  ended: Promise<boolean>;
  close(): void;
}

/** Sends one request on its own TLS connection and resolves once the response headers arrive. */
export function openStream(url: string, init: RequestInit = {}): Promise<EdgeStream> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(url, {
      method: init.method ?? 'GET',
      headers: init.headers,
      rejectUnauthorized: false,
      agent: false,
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no response headers from ${url} within ${init.timeoutMs ?? 15_000} ms`));
    }, init.timeoutMs ?? 15_000);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      const ended = new Promise<boolean>((done) => {
        res.once('end', () => done(true));
        res.once('close', () => done(res.complete));
        res.once('error', () => done(false));
      });
      resolvePromise({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        ended,
        close: () => req.destroy(),
      });
    });
    req.end(init.body);
  });
}

/** One HTTPS request through nginx, body read to the end. */
export async function edgeRequest(url: string, init: RequestInit = {}): Promise<EdgeResponse> {
  const stream = await openStream(url, init);
  await stream.ended;
  return { status: stream.status, headers: stream.headers, body: stream.text() };
}
