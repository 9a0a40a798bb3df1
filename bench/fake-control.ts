// Starts bench/fake.ts pinned to a core and talks to it over its stdin/stdout line protocol.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type PinnedProcess, spawnPinned } from './procs.ts';

const FAKE = fileURLToPath(new URL('./fake.ts', import.meta.url));

export interface FakeProcess {
  proc: PinnedProcess;
  url: string;
  /** Sends one command and resolves with the answer line (rejects after `timeoutMs`). */
  send(command: string, timeoutMs?: number): Promise<string>;
}

export async function startFake(core: number, port: number, logFile: string): Promise<FakeProcess> {
  const proc = await spawnPinned('fake-upstream', core, [FAKE, '--port', String(port)], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
    logFile,
    pipeStdio: true,
  });
  const { stdin, stdout } = proc.child;
  if (stdin === null || stdout === null) throw new Error('fake-upstream: no stdio pipes');
  const lines = createInterface({ input: stdout });
  const next = async (timeoutMs: number): Promise<string> => {
    const [line] = (await once(lines, 'line', { signal: AbortSignal.timeout(timeoutMs) })) as [string];
    return line;
  };
  const first = await next(15_000).catch(() => '');
  const url = /^listening (\S+)$/.exec(first)?.[1];
  if (url === undefined) {
    await proc.stop();
    throw new Error(`fake-upstream did not start (said: ${JSON.stringify(first)}); see ${logFile}`);
  }
  let queue: Promise<unknown> = Promise.resolve();
  const send = (command: string, timeoutMs = 70_000): Promise<string> => {
    const answer = queue.then(() => {
      stdin.write(`${command}\n`);
      return next(timeoutMs);
    });
    queue = answer.catch(() => {});
    return answer;
  };
  return { proc, url, send };
}
