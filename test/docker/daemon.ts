/**
 * The test bed's own Docker engine: Debian's dockerd, started by the test process as root with a
 * persistent data root (the image cache survives runs) and its own exec root, socket, pidfile and
 * empty daemon.json. No iptables rules, no default bridge, no IP forwarding or masquerading: the
 * containers reach only each other on the test's user-defined networks (subnets from
 * TEST_ADDRESS_POOL) and the host reaches them only through ports published on 127.0.0.1.
 *
 * One engine per test process, serialised by the keeper's lock (keeper.ts): a second test process
 * waits for the first to finish. Within a process every test shares the running engine.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pidAlive, waitFor } from '../helpers/processes.ts';
import { cliConfigDir, type DockerCli, dockerCli } from './cli.ts';
import { acquireKeeper, type Keeper } from './keeper.ts';
import { removeTree } from './mounts.ts';
import { type DaemonPaths, daemonPaths, TEST_ADDRESS_POOL } from './paths.ts';
import { sweepEngine } from './sweep.ts';

export interface Dockerd {
  readonly paths: DaemonPaths;
  readonly pid: number;
  readonly cli: DockerCli;
  /** The last lines dockerd logged, for error messages. */
  logTail(lines?: number): string;
  /** Removes every container, network and volume, stops dockerd by PID, releases the lock. */
  stop(): Promise<void>;
}

/** Thrown when the engine cannot start here (a reason to skip, not a test failure). */
export class DockerdUnavailable extends Error {
  override name = 'DockerdUnavailable';
}

const LOCK_WAIT_MS = 40 * 60_000;

/** Starts the engine (after waiting for the lock) and empties it of anything a crashed run left. */
export async function startDockerd(): Promise<Dockerd> {
  const paths = daemonPaths();
  mkdirSync(paths.stateDir, { recursive: true });
  const keeper = await acquireKeeper(paths.lockFile, paths.pidFile, paths.dataRoot, LOCK_WAIT_MS);
  let pid: number | undefined;
  try {
    await stopStrayDaemon(paths);
    removeTree(paths.execRoot);
    pid = spawnDockerd(paths);
    const cli = dockerCli(`unix://${paths.socket}`, cliConfigDir(paths.stateDir));
    await waitForEngine(paths, pid);
    await sweepEngine(cli);
    return makeHandle(paths, pid, cli, keeper);
  } catch (err) {
    if (pid !== undefined) await stopPid(pid, 60_000);
    removeTree(paths.execRoot);
    await keeper.release();
    throw err;
  }
}

function spawnDockerd(paths: DaemonPaths): number {
  mkdirSync(paths.execRoot, { recursive: true, mode: 0o700 });
  // An empty daemon.json: the machine's /etc/docker/daemon.json must not change the test engine.
  const configFile = join(paths.stateDir, 'daemon.json');
  writeFileSync(configFile, '{}\n');
  const args = [
    ...['--data-root', paths.dataRoot, '--exec-root', paths.execRoot, '--pidfile', paths.pidFile],
    ...['-H', `unix://${paths.socket}`, '--config-file', configFile],
    ...['--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none'],
    ...['--default-address-pool', `base=${TEST_ADDRESS_POOL.base},size=${TEST_ADDRESS_POOL.size}`],
  ];
  const log = openSync(paths.logFile, 'w');
  try {
    // Own process group and a log file, not a pipe: it must outlive a dying test process long
    // enough for the keeper to stop it cleanly.
    const child = spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log] });
    child.once('error', () => {}); // no PID then: reported below
    child.unref();
    if (child.pid === undefined) throw new DockerdUnavailable('dockerd could not be started (no PID)');
    return child.pid;
  } finally {
    closeSync(log);
  }
}

async function waitForEngine(paths: DaemonPaths, pid: number): Promise<void> {
  try {
    await waitFor(
      async () => {
        if (!pidAlive(pid)) throw new DockerdUnavailable('dockerd exited');
        return ping(paths.socket);
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'dockerd to answer /_ping' },
    );
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DockerdUnavailable(`dockerd did not start (${reason}); its log:\n${tailOf(paths.logFile, 30)}`);
  }
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

function makeHandle(paths: DaemonPaths, pid: number, cli: DockerCli, keeper: Keeper): Dockerd {
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    try {
      await sweepEngine(cli);
    } finally {
      await stopPid(pid, 60_000);
      await stopOrphanedContainerd(paths);
      removeTree(paths.execRoot);
      await keeper.release();
    }
  };
  return {
    paths,
    pid,
    cli,
    logTail: (lines = 40) => tailOf(paths.logFile, lines),
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
  };
}

/** SIGTERM (dockerd then stops its containers and its containerd), SIGKILL after `graceMs`. */
async function stopPid(pid: number, graceMs: number): Promise<void> {
  if (!pidAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  try {
    await waitFor(() => !pidAlive(pid), {
      timeoutMs: graceMs,
      intervalMs: 100,
      what: `dockerd ${pid} to exit`,
    });
  } catch {
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !pidAlive(pid), {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: `dockerd ${pid} to die`,
    });
  }
}

/** A dockerd on our data root whose test process and keeper were both killed: stop it first. */
async function stopStrayDaemon(paths: DaemonPaths): Promise<void> {
  const pid = pidFromFile(paths.pidFile, `--data-root ${paths.dataRoot}`);
  if (pid !== undefined) await stopPid(pid, 60_000);
}

/** The containerd dockerd runs for itself outlives a dockerd that had to be SIGKILLed. */
async function stopOrphanedContainerd(paths: DaemonPaths): Promise<void> {
  const pid = pidFromFile(join(paths.execRoot, 'containerd', 'containerd.pid'), paths.execRoot);
  if (pid !== undefined) await stopPid(pid, 30_000);
}

/** The PID in `file`, if that process runs with `marker` in its command line. */
function pidFromFile(file: string, marker: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    return Number.isInteger(pid) && pid > 0 && cmdline.includes(marker) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function tailOf(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
