// Benchmark processes: spawned pinned to a core with taskset, their output in a log file, registered
// so they are killed by PID when the runner exits (even on a crash), and stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { registerProcess, unregisterProcess } from '../test/helpers/processes.ts';

export interface PinnedProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs `node args...` on CPU `core` (taskset execs node, so the PID is node's own). stdout and
 * stderr go to `logFile`; with `pipeStdio`, stdin and stdout are pipes for a line protocol instead.
 */
export function spawnPinned(
  name: string,
  core: number,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; logFile: string; pipeStdio?: boolean },
): Promise<PinnedProcess> {
  const log = openSync(opts.logFile, 'a');
  const stdio = opts.pipeStdio ? (['pipe', 'pipe', log] as const) : (['ignore', log, log] as const);
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...args], {
    env: opts.env,
    stdio: [...stdio],
  });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      const pid = child.pid as number;
      registerProcess(pid, name);
      void exited.then(() => unregisterProcess(pid));
      const stop = async (graceMs = 10_000) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      };
      resolve({ name, pid, child, exited, stop });
    });
  });
}

/**
 * Resident set size of a process in MB (10^6 bytes; VmRSS), VmHWM for its peak, or RssAnon, its
 * anonymous part (the heaps, malloc's arenas, stacks; the rest is mapped files).
 */
export function memoryMB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' = 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} for PID ${pid}`);
  return (Number(kb) * 1024) / 1e6;
}

/** CPU time (user + system) a process has used, in clock ticks; 0 once it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** PIDs whose parent is `pid` (Postgres backends under the postmaster), found by scanning /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Busy and total clock ticks per CPU since boot, from /proc/stat. */
export function cpuCores(): Array<{ busy: number; total: number }> {
  const cores: Array<{ busy: number; total: number }> = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!/^cpu\d+ /.test(line)) continue;
    const t = line.split(/\s+/).slice(1).map(Number);
    const total = t.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (t[3] ?? 0) + (t[4] ?? 0);
    cores.push({ busy: total - idle, total });
  }
  return cores;
}

/** Which CPU each part of the benchmark runs on. */
export interface CoreLayout {
  /** (b) and (c), measured in turn: always alone on their core. */
  server: number;
  fake: number;
  /** This runner: the throughput and fixed-rate load generators. */
  loadgen: number;
  /** Postgres and Redis. */
  stores: number;
}

/**
 * Spreads the benchmark over `cpus`. The servers are alone on the first. On two CPUs everything
 * else shares the second. With three, the load generator gets its own (its punctuality is what
 * the p99 of every target rests on) and Postgres and Redis join the fake; with four or more, the
 * fake, the generator and the stores get one each, so that (c)'s usage writes delay no one.
 */
export function coreLayout(cpus: readonly number[]): CoreLayout {
  const [server, a, b, c] = cpus;
  if (server === undefined || a === undefined)
    throw new Error(`the benchmark needs two CPUs to pin to; this process may use ${cpus.length}`);
  if (b === undefined) return { server, fake: a, loadgen: a, stores: a };
  if (c === undefined) return { server, fake: b, loadgen: a, stores: b };
  return { server, fake: a, loadgen: b, stores: c };
}

/** The CPUs a `Cpus_allowed_list` names ("0-3,6"), in order. */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw new Error(`not a CPU list: ${list}`);
    const from = Number(m[1]);
    for (let cpu = from; cpu <= Number(m[2] ?? from); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The CPUs this process may run on (its affinity, which a container or cgroup may narrow). */
export function allowedCpus(): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (list === undefined) throw new Error('no Cpus_allowed_list in /proc/self/status');
  return parseCpuList(list);
}
