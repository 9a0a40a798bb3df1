// What one request costs (b) the pass-through and (c) the proxy, flat out (64 connections) and at
// a fixed rate: CPU (all the server's threads), and — when `perf` can count the kernel's
// tracepoints — system calls and context switches. It tells the server's own work from the
// kernel's, and shows how much a fixed rate raises the cost (fewer requests per turn of the loop).
// `--floor` measures bench/koa-floor.ts too (JSON only): what Koa alone adds to the pass-through.
// `--b-main` measures another build's main.js as "proxyB", for an A/B comparison. The servers take
// turns in one order in odd rounds and the reverse in even ones, so drift touches each alike.
//   node bench/paced-cost.ts [--rate 3000] [--seconds 8] [--rounds 2] [--mode json|stream] [--floor]
//                            [--b-main FILE]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { throughput } from './load.ts';
import { pace } from './pacer.ts';
import { requestFor } from './phases.ts';
import { cpuTicks } from './procs.ts';
import { startBench, startProxyB } from './setup.ts';

const { values: o } = parseArgs({
  options: {
    rate: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'json' },
    floor: { type: 'boolean', default: false },
    'b-main': { type: 'string' },
  },
});
const mode = o.mode === 'stream' ? 'stream' : 'json';
if (o.floor && mode === 'stream')
  throw new Error('--floor measures JSON only: bench/koa-floor.ts does not stream');
const seconds = Number(o.seconds);
const EVENTS = ['raw_syscalls:sys_enter', 'context-switches'];

/** Counts EVENTS for `pid` until the returned function is called; empty if perf cannot. */
function countEvents(pid: number): () => Promise<Record<string, number>> {
  const perf = spawn('perf', ['stat', '-x,', '-e', EVENTS.join(','), '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let out = '';
  perf.stderr.on('data', (d: Buffer) => {
    out += d;
  });
  perf.on('error', () => {});
  return async () => {
    if (perf.exitCode === null && perf.pid !== undefined) {
      perf.kill('SIGINT');
      await once(perf, 'close');
    }
    // CSV lines: value,unit,event,...; "<not supported>" and the like are left out.
    const counts: Record<string, number> = {};
    for (const [value, , event] of out.split('\n').map((l) => l.split(',')))
      if (event !== undefined && EVENTS.includes(event) && /^\d+$/.test(value ?? ''))
        counts[event] = Number(value);
    return counts;
  };
}

const bench = await startBench({ app: 'dist' });
const floor = o.floor
  ? await startProxyB(bench, {
      main: fileURLToPath(new URL('koa-floor.ts', import.meta.url)),
      name: 'koa-floor',
    })
  : undefined;
const proxyB = o['b-main'] !== undefined ? await startProxyB(bench, { main: o['b-main'] }) : undefined;
try {
  const req = requestFor(bench, mode);
  const servers = [
    { name: 'passthrough', url: bench.passthrough.url, pid: bench.passthrough.proc.pid },
    ...(floor ? [{ name: 'koa-floor', url: floor.url, pid: floor.proc.pid }] : []),
    { name: 'proxy', url: bench.proxy.url, pid: bench.proxy.proc.pid },
    ...(proxyB ? [{ name: 'proxyB', url: proxyB.url, pid: proxyB.proc.pid }] : []),
  ];
  const cpu = new Map<string, number[]>();
  for (const s of servers) await throughput(s, req, 64, seconds); // warm-up
  for (let round = 1; round <= Number(o.rounds); round++)
    for (const s of round % 2 === 1 ? servers : [...servers].reverse())
      for (const load of ['flat out', `${o.rate}/s`]) {
        const stop = countEvents(s.pid);
        await sleep(300); // perf attaches
        const ticks = cpuTicks(s.pid);
        const served =
          load === 'flat out'
            ? (await throughput(s, req, 64, seconds)).ok
            : (await pace(s, req, Number(o.rate), seconds)).sent;
        const cpuUs = ((cpuTicks(s.pid) - ticks) * 10_000) / served; // a tick is 10 ms
        const key = `${s.name} ${load}`;
        cpu.set(key, [...(cpu.get(key) ?? []), cpuUs]);
        const counts = await stop();
        const per = (event: string) =>
          counts[event] === undefined ? 'n/a' : ((counts[event] as number) / served).toFixed(2);
        process.stdout.write(
          `round ${round} ${mode} ${s.name} ${load}: ${served} requests, CPU ${cpuUs.toFixed(0)} µs, ` +
            `system calls ${per(EVENTS[0] as string)}, context switches ${per(EVENTS[1] as string)} per request\n`,
        );
      }
  for (const [key, values] of cpu) {
    const mean = values.reduce((a, v) => a + v, 0) / values.length;
    process.stdout.write(
      `${mode} ${key}: CPU ${values.map((v) => v.toFixed(0)).join(', ')} µs, mean ${mean.toFixed(1)}\n`,
    );
  }
} finally {
  await proxyB?.proc.stop(40_000);
  await floor?.proc.stop(40_000);
  await bench.close();
}
