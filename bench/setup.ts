// Brings up everything the benchmark measures, all on 127.0.0.1: the bare pass-through and the
// proxy alone on the server core; the fake upstream, the load generator (this runner), Postgres
// and Redis on the others, as many as the machine has (`coreLayout`), so the server core measures
// the server alone (in a deployment Postgres and Redis are containers of their own). The proxy key
// has high but real limits, so the rate limiter runs on every request.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_NODE_FLAGS } from '../infra/node-flags.ts';
import { freePort, waitFor } from '../test/helpers/processes.ts';
import { startStack, type TestStack } from '../test/helpers/stack.ts';
import type { CpuGroup } from './cpu.ts';
import { type FakeProcess, startFake } from './fake-control.ts';
import {
  allowedCpus,
  type CoreLayout,
  childPids,
  coreLayout,
  type PinnedProcess,
  spawnPinned,
} from './procs.ts';

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const PASSTHROUGH = root('bench/passthrough.ts');
/** Postgres's priority (see startBench). */
export const POSTGRES_NICE = 10;
/** The fake upstream's one key (a made-up value: the fake accepts the keys it is given). */
export const BENCH_UPSTREAM_KEY = 'sk-bench-upstream-key-0000000000000001';
const MAIN = { dist: root('dist/app/src/main.js'), src: root('app/src/main.ts') };

export interface BenchOptions {
  app: 'dist' | 'src';
  /** Run the proxy with --cpu-prof, writing the profile here when it exits. */
  profileDir?: string;
  /** Extra environment for the proxy (an A/B comparison of settings). */
  env?: Record<string, string>;
}

export interface Server {
  proc: PinnedProcess;
  url: string;
  /** The proxy's Prometheus endpoint. */
  metricsUrl?: string;
}

export interface Bench {
  /** Where each part runs: `coreLayout` over the CPUs this runner may use. */
  cores: CoreLayout;
  stack: TestStack;
  fake: FakeProcess;
  passthrough: Server;
  proxy: Server;
  proxyKey: string;
  logDir: string;
  cpuGroups: CpuGroup[];
  /**
   * Stops every process by PID (the proxy first, so it flushes usage), removes Postgres and Redis,
   * and deletes the processes' logs unless `keepLogs` (to look into a failure).
   */
  close(keepLogs?: boolean): Promise<void>;
}

/** Waits until `proc` answers `url`; stops it if it never does. */
async function answers(proc: PinnedProcess, url: string, what: string): Promise<void> {
  try {
    await waitFor(async () => (await fetch(url)).status > 0, { timeoutMs: 30_000, what });
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** Starts the proxy (compiled, or from source) pinned to `core`, against the fake, and waits until it serves. */
export async function startProxy(
  stack: TestStack,
  fakeUrl: string,
  o: {
    core: number;
    logFile: string;
    app?: 'dist' | 'src';
    /** Another build's main.js (an A/B comparison of two builds). */
    main?: string;
    profileDir?: string;
    env?: Record<string, string>;
    /** Extra flags for node (V8 flags such as --single-threaded-gc cannot go in NODE_OPTIONS). */
    nodeArgs?: string[];
  },
): Promise<Server> {
  const main = o.main ?? MAIN[o.app ?? 'dist'];
  if (!existsSync(main))
    throw new Error(`${main} is missing: run \`npm run build\` first (or pass --app src)`);
  const port = await freePort();
  const metricsPort = await freePort();
  const profile = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : [];
  const proc = await spawnPinned(
    'proxy',
    o.core,
    [...profile, ...APP_NODE_FLAGS, ...(o.nodeArgs ?? []), main],
    {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        ...stack.env,
        OPENAI_BASE_URL: `${fakeUrl}/v1`,
        HOST: '127.0.0.1',
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        LOG_LEVEL: 'info',
        ...o.env,
      },
      logFile: o.logFile,
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await answers(proc, `${url}/health/live`, 'the proxy');
  return { proc, url, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

/** `NAME=VALUE` words from the command line as an environment (for `env` below). */
export function envOf(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

/**
 * Starts a second proxy, "proxyB", for an A/B comparison: another build (`main`), other settings
 * (`env`) or other node flags, on the servers' core, with its CPU measured as a group of its own.
 */
export async function startProxyB(
  bench: Bench,
  o: { main?: string; env?: Record<string, string>; nodeArgs?: string[]; name?: string },
): Promise<Server> {
  const name = o.name ?? 'proxyB';
  const proxyB = await startProxy(bench.stack, bench.fake.url, {
    core: bench.cores.server,
    logFile: join(bench.logDir, `${name}.log`),
    main: o.main,
    env: o.env,
    nodeArgs: o.nodeArgs,
  });
  bench.cpuGroups.push({ name, pids: () => [proxyB.proc.pid] });
  return proxyB;
}

/** Starts the bare pass-through pinned to `core`, in front of the fake, and waits until it serves. */
export async function startPassthrough(
  fakeUrl: string,
  core: number,
  logFile: string,
  nodeArgs: string[] = [],
): Promise<Server> {
  const port = await freePort();
  const proc = await spawnPinned(
    'passthrough',
    core,
    [...nodeArgs, PASSTHROUGH, '--upstream', fakeUrl, '--port', String(port)],
    {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
      logFile,
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await answers(proc, `${url}/v1/models`, 'the pass-through');
  return { proc, url };
}

export async function startBench(o: BenchOptions): Promise<Bench> {
  const cores = coreLayout(allowedCpus());
  const logDir = mkdtempSync(join(tmpdir(), 'gpt-proxy-bench-'));
  const stack = await startStack({ upstreamKeys: [BENCH_UPSTREAM_KEY] });
  const started: PinnedProcess[] = [];
  const close = async (keepLogs = false) => {
    for (const p of [...started].reverse()) await p.stop(40_000);
    await stack.destroy();
    if (!keepLogs) rmSync(logDir, { recursive: true, force: true });
  };
  try {
    // Postgres's backends fork from the postmaster and inherit its affinity; the ones already
    // running are pinned here too.
    const pg = stack.pg.pid ?? 0;
    const pin = (core: number, pids: number[]) => {
      for (const pid of pids)
        execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' });
    };
    pin(cores.loadgen, [process.pid]);
    pin(cores.stores, [stack.redis.pid ?? 0, pg, ...childPids(pg)]);
    // On fewer than four CPUs Postgres shares a core with the fake upstream, which stands for a
    // remote service: its batch inserts of (c)'s usage rows (10-15 ms of CPU each) must not hold
    // up the fake's answers, which only (c)'s runs would pay. At a lower priority (backends
    // inherit it) it runs when the instruments leave the core idle; its CPU is still measured and
    // reported. On a core of its own the priority changes nothing.
    for (const pid of [pg, ...childPids(pg)]) {
      try {
        setPriority(pid, POSTGRES_NICE);
      } catch (err) {
        // A worker that exited since it was listed (autovacuum's come and go) needs no priority.
        if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') throw err;
      }
    }
    const fake = await startFake(cores.fake, await freePort(), join(logDir, 'fake.log'));
    started.push(fake.proc);
    const passthrough = await startPassthrough(fake.url, cores.server, join(logDir, 'passthrough.log'));
    started.push(passthrough.proc);
    const pt = passthrough.proc;

    const { key } = await stack.issueKey({ rpm: 10_000_000, tpm: 1_000_000_000 });
    const app = await startProxy(stack, fake.url, {
      core: cores.server,
      logFile: join(logDir, 'proxy.log'),
      app: o.app,
      profileDir: o.profileDir,
      env: o.env,
    });
    started.push(app.proc);

    const cpuGroups: CpuGroup[] = [
      { name: 'proxy', pids: () => [app.proc.pid] },
      { name: 'passthrough', pids: () => [pt.pid] },
      { name: 'fake', pids: () => [fake.proc.pid] },
      { name: 'loadgen', pids: () => [process.pid] },
      { name: 'redis', pids: () => [stack.redis.pid ?? 0] },
      { name: 'postgres', pids: () => [pg, ...childPids(pg)] },
    ];
    return { cores, stack, fake, passthrough, proxy: app, proxyKey: key, logDir, cpuGroups, close };
  } catch (err) {
    await close();
    throw err;
  }
}
