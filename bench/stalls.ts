// The machine's own stalls on the servers' core, measured while the benchmark's servers are idle:
// how often, and for how long, a process pinned there goes without running, first with the other
// CPUs idle, then with them busy (as they are during the benchmark). On a virtual machine the
// host may take a CPU away for milliseconds; a server loaded to 70–90% of its core turns each such
// gap into a queue several times as long, so these figures are the floor under every p99 here.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PinnedProcess, spawnPinned } from './procs.ts';

const SPIN = fileURLToPath(new URL('./spin.ts', import.meta.url));

export interface Stalls {
  /** Gaps of over 5 ms. */
  over5ms: number;
  longestMs: number;
  /** All gaps of over 0.5 ms together. */
  lostMs: number;
}

/** bench/spin.ts on `core`: its gaps on stdout, or with `--burn` only a busy CPU. */
function spin(core: number, args: string[], logDir: string): Promise<PinnedProcess> {
  return spawnPinned('spin', core, [SPIN, ...args], {
    env: { PATH: process.env.PATH ?? '' },
    logFile: join(logDir, 'spin.log'),
    pipeStdio: !args.includes('--burn'),
  });
}

async function spinOn(core: number, seconds: number, logDir: string): Promise<Stalls> {
  const spinner = await spin(core, [String(seconds)], logDir);
  let out = '';
  spinner.child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  await spinner.exited;
  const gaps = JSON.parse(out) as number[];
  return {
    over5ms: gaps.filter((g) => g > 5).length,
    longestMs: Math.max(0, ...gaps),
    lostMs: gaps.reduce((a, b) => a + b, 0),
  };
}

/** Spins `seconds` on `server` with `others` idle, then again with each of `others` kept busy. */
export async function machineStalls(
  server: number,
  others: readonly number[],
  seconds: number,
  logDir: string,
): Promise<{ quiet: Stalls; busy: Stalls }> {
  const quiet = await spinOn(server, seconds, logDir);
  const burners: PinnedProcess[] = [];
  try {
    for (const core of others) burners.push(await spin(core, [String(seconds + 2), '--burn'], logDir));
    return { quiet, busy: await spinOn(server, seconds, logDir) };
  } finally {
    await Promise.all(burners.map((b) => b.stop()));
  }
}

export function describeStalls(s: Stalls): string {
  return `${s.over5ms} gaps over 5 ms, longest ${s.longestMs.toFixed(1)} ms, ${s.lostMs.toFixed(0)} ms lost in all`;
}
