/**
 * Looking at containers from a test: the processes inside one (stand-in images carry no `ps`),
 * waiting for an HTTP answer on a port published on 127.0.0.1, for a line in a container's log,
 * or for a container to exit.
 */
import { StopWaiting, waitFor } from '../helpers/processes.ts';
import type { Container } from './containers.ts';

export interface ContainerProcess {
  pid: number;
  uid: number;
  cmdline: string;
}

const LIST_PROCESSES = `for d in /proc/[0-9]*; do
  uid=$(awk '$1 == "Uid:" { print $2 }' "$d/status" 2>/dev/null) || continue
  cmd=$(tr '\\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
  [ -n "$cmd" ] && printf '%s %s %s\\n' "\${d#/proc/}" "$uid" "$cmd"
done; true`;

/** The container's processes with their real uid and command line (the probe's own shell excluded). */
export async function processes(container: Container): Promise<ContainerProcess[]> {
  const { stdout } = await container.exec(['sh', '-c', LIST_PROCESSES]);
  return stdout
    .split('\n')
    .map((line) => /^(\d+) (\d+) (.*)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), uid: Number(m[2]), cmdline: (m[3] ?? '').trim() }))
    .filter(
      (p) =>
        !p.cmdline.includes('/proc/[0-9]*') && !p.cmdline.startsWith('tr ') && !p.cmdline.startsWith('awk '),
    );
}

export interface HttpWait {
  status?: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Stop waiting (with its log) as soon as this container is no longer running. */
  container?: Container;
}

/** GETs `url` (127.0.0.1 only) until it answers with `status`; returns the body. */
export async function waitForHttp(url: string, options: HttpWait = {}): Promise<string> {
  const { status = 200, timeoutMs = 60_000, headers = {}, container } = options;
  if (new URL(url).hostname !== '127.0.0.1') throw new Error(`test traffic goes to 127.0.0.1 only: ${url}`);
  return waitFor(
    async () => {
      if (container && (await container.inspect('{{.State.Running}}')) !== 'true') {
        throw new StopWaiting(`${container.name} stopped; its log:\n${await container.logs()}`);
      }
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
      const body = await response.text();
      if (response.status !== status)
        throw new Error(`${url} answered ${response.status}: ${body.slice(0, 200)}`);
      return body;
    },
    { timeoutMs, intervalMs: 250, what: `${url} to answer ${status}` },
  );
}

/** Waits until the container's log matches `pattern`; returns the whole log. */
export async function waitForLog(container: Container, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  let last = '';
  try {
    return await waitFor(
      async () => {
        last = await container.logs();
        if (pattern.test(last)) return last;
        if ((await container.inspect('{{.State.Running}}')) !== 'true')
          throw new StopWaiting(`${container.name} stopped`);
        return undefined;
      },
      { timeoutMs, intervalMs: 250, what: `${pattern} in the log of ${container.name}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- log of ${container.name} ---\n${last}`);
  }
}

/** Waits for the container to stop; returns its exit code. */
export async function waitForExit(container: Container, timeoutMs = 60_000): Promise<number> {
  const code = await waitFor(
    async () => {
      const state = await container.inspect('{{.State.Status}} {{.State.ExitCode}}');
      const [status, exitCode] = state.split(' ');
      return status === 'exited' ? `${exitCode}` : undefined;
    },
    { timeoutMs, intervalMs: 250, what: `${container.name} to exit` },
  );
  return Number(code);
}
