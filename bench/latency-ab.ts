// An A/B comparison of latency at a fixed rate, for performance work (the benchmark of record is
// bench/run.ts): this build's proxy against another build's ("proxyB", `--b-main`), with the
// pass-through measured alongside. Each server is first run flat out for `--warm` seconds (a
// proxy that has been under load collects differently from a fresh one), then every round measures
// all three at `--rate`, in an order that turns each round, so drift weighs on each alike.
//   node bench/latency-ab.ts --b-main FILE [--b-node-arg=--FLAG]... [--rate 4700] [--rounds 6] [--seconds 8]
//                            [--mode json|stream] [--keep-logs]
import { parseArgs } from 'node:util';
import { formatCpu, startCpuMeter } from './cpu.ts';
import { describeLatency, summarize, throughput } from './load.ts';
import { pace } from './pacer.ts';
import { requestFor } from './phases.ts';
import { median } from './report.ts';
import { startBench, startProxyB } from './setup.ts';

const { values: o } = parseArgs({
  options: {
    'b-main': { type: 'string' },
    rate: { type: 'string', default: '4700' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '8' },
    warm: { type: 'string', default: '20' },
    mode: { type: 'string', default: 'json' },
    'b-node-arg': { type: 'string', multiple: true, default: [] },
    'keep-logs': { type: 'boolean', default: false },
  },
});
if (o['b-main'] === undefined) throw new Error('--b-main FILE (the other build) is required');
const mode = o.mode === 'stream' ? 'stream' : 'json';
const rate = Number(o.rate);
const bench = await startBench({ app: 'dist' });
const proxyB = await startProxyB(bench, { main: o['b-main'], nodeArgs: o['b-node-arg'] });
try {
  const targets = [
    { name: 'proxy', url: bench.proxy.url },
    { name: 'proxyB', url: proxyB.url },
    { name: 'passthrough', url: bench.passthrough.url },
  ];
  const req = requestFor(bench, mode);
  for (const t of targets) await throughput(t, req, 64, Number(o.warm));
  const p99s = new Map<string, number[]>();
  for (let round = 0; round < Number(o.rounds); round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length] as (typeof targets)[number]);
    if (round % 2 === 1) order.reverse();
    for (const t of order) {
      const meter = startCpuMeter(bench.cpuGroups);
      const r = summarize([await pace(t, req, rate, Number(o.seconds))]);
      const cpu = meter.stop();
      p99s.set(t.name, [...(p99s.get(t.name) ?? []), r.failures === 0 ? r.p99 : Number.NaN]);
      process.stdout.write(
        `round ${round + 1} ${mode} ${t.name} @${rate}/s: ${describeLatency(r)} | ${formatCpu(cpu)}\n`,
      );
    }
  }
  for (const [name, xs] of p99s)
    process.stdout.write(
      `${name}: p99 median ${median(xs).toFixed(2)} ms over ${xs.length} rounds (${xs.map((x) => x.toFixed(1)).join(', ')})\n`,
    );
} finally {
  await proxyB.proc.stop(40_000);
  await bench.close(o['keep-logs']);
  if (o['keep-logs']) process.stdout.write(`logs kept in ${bench.logDir}\n`);
}
