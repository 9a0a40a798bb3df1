/**
 * Process helpers for tests: free ports, a registry of the child processes this
 * test process started (all killed by PID on exit, even when a test throws),
 * a polling helper, and a wrapper for long-running server processes that keeps
 * their output in a bounded buffer for diagnostics.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

// ---------------------------------------------------------------------------
// Ports

/** Asks the kernel for a free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: could not read the listening address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

// ---------------------------------------------------------------------------
// Registry: every child started here is killed by PID when this process exits.

interface RegisteredProcess {
  pid: number;
  name: string;
}

const registeredProcesses = new Map<number, RegisteredProcess>();
const registeredTempDirs = new Set<string>();
/** Processes frozen by freezeProcessTree and not thawed yet. */
const frozenPids = new Set<number>();
let exitHandlersInstalled = false;

function killAllSync(): void {
  for (const { pid } of registeredProcesses.values()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  registeredProcesses.clear();
  // Children left stopped would outlive us: resumed, they notice their parent is gone and exit.
  for (const pid of frozenPids) signal(pid, 'SIGCONT');
  frozenPids.clear();
  for (const dir of registeredTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
  registeredTempDirs.clear();
}

function onFatalSignal(signal: NodeJS.Signals): void {
  killAllSync();
  // Re-raise with the default disposition so the exit status still says "killed by signal".
  process.removeListener(signal, onFatalSignal);
  process.kill(process.pid, signal);
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, onFatalSignal);
  }
}

/** Registers a PID to be SIGKILLed when this process exits. */
export function registerProcess(pid: number, name: string): void {
  installExitHandlers();
  registeredProcesses.set(pid, { pid, name });
}

/** Removes a PID from the registry (call once the process has exited and been reaped). */
export function unregisterProcess(pid: number): void {
  registeredProcesses.delete(pid);
}

/** PIDs and names of the registered, still-running processes. */
export function registeredPids(): Array<{ pid: number; name: string }> {
  return [...registeredProcesses.values()].map((p) => ({ ...p }));
}

/** Registers a temporary directory to be removed when this process exits (after the kills). */
export function registerTempDir(dir: string): void {
  installExitHandlers();
  registeredTempDirs.add(dir);
}

export function unregisterTempDir(dir: string): void {
  registeredTempDirs.delete(dir);
}

/** True when a process with this PID exists (signal 0 probe). EPERM counts as alive. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone
  }
}

/** The PIDs of `pid`'s children (Linux: /proc/PID/task/TID/children). */
function childPids(pid: number): number[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number),
  );
}

/**
 * Freezes a server as a stalled host would: SIGSTOP to `pid`, then to its children (Postgres's
 * backends; stopped first, the parent forks none meanwhile). Its sockets stay open and the kernel
 * still accepts connections, but nothing is answered. Returns the thaw (SIGCONT to each, once):
 * call it in `finally`. A process frozen at exit is thawed by the exit handler.
 */
export function freezeProcessTree(pid: number): () => void {
  installExitHandlers();
  process.kill(pid, 'SIGSTOP');
  const pids = [pid, ...childPids(pid)];
  for (const p of pids) {
    frozenPids.add(p);
    signal(p, 'SIGSTOP');
  }
  let thawed = false;
  return () => {
    if (thawed) return;
    thawed = true;
    for (const p of pids) {
      signal(p, 'SIGCONT');
      frozenPids.delete(p);
    }
  };
}

/** pause()/resume() for a server whose current PID `pidOf` gives (undefined while it is stopped). */
export function pausable(pidOf: () => number | undefined): { pause(): void; resume(): void } {
  let thaw: (() => void) | undefined;
  return {
    pause() {
      const pid = pidOf();
      if (pid === undefined) throw new Error('pause(): the server is not running');
      if (thaw) throw new Error('pause(): already paused');
      thaw = freezeProcessTree(pid);
    },
    resume() {
      thaw?.();
      thaw = undefined;
    },
  };
}

// ---------------------------------------------------------------------------
// Polling

export interface WaitForOptions {
  /** Give up after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Delay between attempts (default 50 ms). */
  intervalMs?: number;
  /** What is being waited for, used in the timeout message. */
  what?: string;
}

/** Thrown from a waitFor callback to stop waiting at once (e.g. the server process died). */
export class StopWaiting extends Error {
  override name = 'StopWaiting';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` until it returns a truthy value, which is returned. A thrown error
 * counts as "not yet" (the last one is quoted on timeout), except StopWaiting,
 * which is rethrown immediately.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const value = await fn();
      if (value !== undefined && value !== null && value !== false && value !== 0 && value !== '') {
        return value as NonNullable<T>;
      }
      lastError = undefined;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail =
        lastError === undefined
          ? ''
          : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`Timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}${detail}`);
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

// ---------------------------------------------------------------------------
// Long-running server processes

export interface SpawnServerOptions {
  /** Name used in messages and in the registry. */
  name?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Bytes of combined stdout+stderr kept (the most recent ones). Default 256 KiB. */
  maxOutputBytes?: number;
  /** Also copy the output to this process's stderr (or set TEST_SERVER_OUTPUT=1). */
  echo?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Set once the process has exited (and been reaped). */
  readonly exitInfo: ExitInfo | undefined;
  /** Resolves when the process has exited. Never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** The kept tail of stdout and stderr, interleaved as received. */
  output(): string;
  /**
   * Sends `signal` (default SIGTERM) to the PID and waits for the exit; sends
   * SIGKILL if it has not exited after `timeoutMs` (default 10 s).
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
}

class OutputBuffer {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #dropped = 0;
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > this.#max && this.#chunks.length > 1) {
      const first = this.#chunks.shift();
      if (!first) break;
      this.#bytes -= first.length;
      this.#dropped += first.length;
    }
    if (this.#bytes > this.#max) {
      const only = this.#chunks[0];
      if (only) {
        const cut = only.length - this.#max;
        this.#chunks[0] = only.subarray(cut);
        this.#bytes -= cut;
        this.#dropped += cut;
      }
    }
  }

  toString(): string {
    const text = Buffer.concat(this.#chunks).toString('utf8');
    return this.#dropped > 0 ? `[... ${this.#dropped} earlier bytes dropped ...]\n${text}` : text;
  }
}

/**
 * Spawns a long-running process, registers its PID for kill-on-exit, and keeps
 * its output in a bounded buffer. The child does not keep the event loop alive,
 * so a test file that forgets to stop it still exits (and the exit handler kills it).
 * Rejects if the process cannot be spawned (e.g. ENOENT).
 */
export function spawnServer(
  command: string,
  args: readonly string[],
  options: SpawnServerOptions = {},
): Promise<ServerProcess> {
  const name = options.name ?? command;
  const buffer = new OutputBuffer(options.maxOutputBytes ?? 256 * 1024);
  const echo = options.echo ?? process.env.TEST_SERVER_OUTPUT === '1';

  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      uid: options.uid,
      gid: options.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });

    let exitInfo: ExitInfo | undefined;
    let resolveExited: (info: ExitInfo) => void = () => {};
    const exited = new Promise<ExitInfo>((r) => {
      resolveExited = r;
    });

    const onData = (chunk: Buffer) => {
      buffer.push(chunk);
      if (echo) process.stderr.write(`[${name}] ${chunk.toString('utf8')}`);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);

    child.once('error', (err) => {
      if (child.pid === undefined) {
        reject(new Error(`Could not start ${name} (${command}): ${err.message}`, { cause: err }));
      }
    });
    // 'exit' (not 'close'): the streams may stay open if the process left children behind.
    child.once('exit', (code, signal) => {
      if (child.pid !== undefined) unregisterProcess(child.pid);
      exitInfo = { code, signal };
      resolveExited(exitInfo);
    });

    child.once('spawn', () => {
      const pid = child.pid;
      if (pid === undefined) {
        reject(new Error(`Could not start ${name}: no PID`));
        return;
      }
      registerProcess(pid, name);
      child.unref();
      (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
      (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

      const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ExitInfo> => {
        if (exitInfo) return exitInfo;
        try {
          process.kill(pid, signal);
        } catch {
          // already exiting
        }
        // This timer keeps the event loop alive until the exit is observed.
        let timer: NodeJS.Timeout | undefined;
        const escalate = new Promise<void>((r) => {
          timer = setTimeout(r, timeoutMs);
        });
        const first = await Promise.race([
          exited.then(() => 'exited' as const),
          escalate.then(() => 'timeout' as const),
        ]);
        if (first === 'timeout') {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
          const keepAlive = setInterval(() => {}, 1000);
          try {
            return await exited;
          } finally {
            clearInterval(keepAlive);
          }
        }
        clearTimeout(timer);
        return await exited;
      };

      resolve({
        name,
        pid,
        child,
        get exitInfo() {
          return exitInfo;
        },
        exited,
        output: () => buffer.toString(),
        stop,
      });
    });
  });
}

/** Formats the kept output of a server for an error message. */
export function describeOutput(proc: Pick<ServerProcess, 'name' | 'output'>): string {
  const text = proc.output().trimEnd();
  return text
    ? `\n--- output of ${proc.name} ---\n${text}\n--- end of output ---`
    : ` (${proc.name} printed nothing)`;
}

/**
 * Waits until a just-spawned server passes `ready`, failing at once (with its output) if it exits
 * first; on any failure the server is stopped with `stopSignal` before the error is thrown.
 */
export async function waitUntilServing(
  server: ServerProcess,
  ready: () => Promise<boolean>,
  o: { what: string; timeoutMs: number; intervalMs: number; stopSignal: NodeJS.Signals },
): Promise<void> {
  try {
    await waitFor(
      async () => {
        if (server.exitInfo) {
          throw new StopWaiting(
            `${server.name} exited during startup (code ${server.exitInfo.code}, ` +
              `signal ${server.exitInfo.signal})${describeOutput(server)}`,
          );
        }
        return ready();
      },
      { timeoutMs: o.timeoutMs, intervalMs: o.intervalMs, what: o.what },
    );
  } catch (err) {
    await server.stop(o.stopSignal, 5000);
    if (err instanceof StopWaiting) throw new Error(err.message);
    throw new Error(`${(err as Error).message}${describeOutput(server)}`);
  }
}
