/**
 * The keeper: one small `flock … sh` process per test process that (1) holds the exclusive lock on
 * the test bed's state directory, so two test processes never run two engines on one data root,
 * and (2) stops that engine by PID if the test process dies without doing it: it waits for EOF on
 * the stdin pipe from the test process, which the kernel delivers however the test process ends
 * (even SIGKILL), then SIGTERMs the PID in the pidfile (if it is still our dockerd), waits, and
 * only then exits, which releases the lock. A normal stop() stops dockerd itself first, so the
 * keeper finds nothing to do.
 */
import { type ChildProcess, spawn } from 'node:child_process';

// $1 dockerd's pidfile, $2 the data root that tells our dockerd from any other process.
const KEEPER_SCRIPT = `
echo locked
exec >/dev/null 2>&1
cat
pid=$(cat "$1" 2>/dev/null) || exit 0
case $pid in '' | *[!0-9]*) exit 0 ;; esac
tr '\\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--data-root $2" || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
i=0
while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$pid" 2>/dev/null
exit 0
`;

export interface Keeper {
  readonly pid: number;
  /** Ends the keeper (it stops a dockerd still running first) and waits for it: lock released. */
  release(timeoutMs?: number): Promise<void>;
}

/**
 * Waits (up to `waitMs`) for the lock file `lockFile` and returns the keeper holding it.
 * `pidFile` and `dataRoot` tell the keeper which dockerd to stop if this process dies.
 */
export function acquireKeeper(
  lockFile: string,
  pidFile: string,
  dataRoot: string,
  waitMs: number,
): Promise<Keeper> {
  const waitSeconds = String(Math.ceil(waitMs / 1000));
  const child = spawn(
    'flock',
    ['--exclusive', '--wait', waitSeconds, lockFile, 'sh', '-c', KEEPER_SCRIPT, 'keeper', pidFile, dataRoot],
    // Own process group: a Ctrl-C aimed at the test runner must not end the keeper before dockerd.
    { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let said = '';
    const onData = (chunk: Buffer) => {
      said += chunk.toString('utf8');
      if (!said.includes('locked')) return;
      child.stdout?.off('data', onData);
      unrefAll(child);
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      resolve({ pid: child.pid ?? -1, release: (timeoutMs = 90_000) => release(child, exited, timeoutMs) });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      said += chunk.toString('utf8');
    });
    child.once('error', (err) => reject(new Error(`cannot run flock (util-linux): ${err.message}`)));
    child.once('exit', (code) => {
      if (!said.includes('locked')) {
        reject(
          new Error(`no lock on ${lockFile} within ${waitSeconds} s (flock exited ${code}): ${said.trim()}`),
        );
      }
    });
  });
}

async function release(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => {
    timer = setTimeout(() => r('late'), timeoutMs);
  });
  const outcome = await Promise.race([exited.then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late' && child.pid !== undefined) {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

/** Lets this process exit while the keeper runs: only the pipe's end tells the keeper to act. */
function unrefAll(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
}
