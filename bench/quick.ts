// A quick comparison for performance work (not the benchmark of record, which is bench/run.ts):
// throughput of (b) the pass-through and (c) the proxy, JSON and streamed, with the CPU each used
// per request. Same set-up and pinning as the full benchmark. For an A/B comparison, `--b-main`
// (another build's main.js) and/or `--b-env` start a second proxy, "proxyB", measured in turn
// with the others, so drift on a shared machine affects both alike.
//   node bench/quick.ts [--duration 6] [--runs 2] [--app dist|src] [--profile DIR] [--env NAME=VALUE]...
//                       [--mode json|stream] [--target proxy|passthrough|proxyB]
//                       [--b-main FILE] [--b-env NAME=VALUE]... [--b-node-arg=--FLAG]...
import { parseArgs } from 'node:util';
import { formatCpu, startCpuMeter } from './cpu.ts';
import { throughput } from './load.ts';
import { requestFor } from './phases.ts';
import { MODES, median } from './report.ts';
import { envOf, startBench, startProxyB } from './setup.ts';
import { holdStreams } from './streams.ts';

const { values: o } = parseArgs({
  options: {
    duration: { type: 'string', default: '6' },
    runs: { type: 'string', default: '2' },
    app: { type: 'string', default: 'dist' },
    profile: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    mode: { type: 'string' },
    target: { type: 'string' },
    'b-main': { type: 'string' },
    'b-env': { type: 'string', multiple: true, default: [] },
    'b-node-arg': { type: 'string', multiple: true, default: [] },
    hold: { type: 'string', default: '0' },
  },
});
const bench = await startBench({
  app: o.app === 'src' ? 'src' : 'dist',
  profileDir: o.profile,
  env: envOf(o.env),
});
const proxyB =
  o['b-main'] !== undefined || o['b-env'].length > 0 || o['b-node-arg'].length > 0
    ? await startProxyB(bench, { main: o['b-main'], env: envOf(o['b-env']), nodeArgs: o['b-node-arg'] })
    : undefined;
try {
  const targets = [
    { name: 'passthrough', url: bench.passthrough.url },
    { name: 'proxy', url: bench.proxy.url },
    ...(proxyB ? [{ name: 'proxyB', url: proxyB.url }] : []),
  ].filter((t) => o.target === undefined || t.name === o.target);
  const modes = MODES.filter((m) => o.mode === undefined || m === o.mode);
  // As in the full benchmark: first hold `--hold` streams open through each server.
  if (Number(o.hold) > 0)
    for (const [t, pid] of [
      [targets.find((x) => x.name === 'proxy'), bench.proxy.proc.pid],
      [targets.find((x) => x.name === 'passthrough'), bench.passthrough.proc.pid],
    ] as const)
      if (t)
        await holdStreams({
          target: t,
          req: requestFor(bench, 'stream'),
          count: Number(o.hold),
          serverPid: pid,
          fake: bench.fake,
          holdSeconds: 5,
        });
  for (const m of modes) for (const t of targets) await throughput(t, requestFor(bench, m), 64, 4);
  const results = new Map<string, Array<{ rps: number; us: number }>>();
  for (let run = 1; run <= Number(o.runs); run++)
    for (const m of modes)
      for (const t of targets) {
        const meter = startCpuMeter(bench.cpuGroups);
        const r = await throughput(t, requestFor(bench, m), 64, Number(o.duration));
        const cpu = meter.stop();
        const perRequest = ((cpu.groups[t.name] ?? 0) * 10_000) / Math.max(1, r.rps);
        const key = `${m} ${t.name}`;
        results.set(key, [...(results.get(key) ?? []), { rps: r.rps, us: perRequest }]);
        process.stdout.write(
          `${m} ${t.name}: ${r.rps.toFixed(0)} req/s, failures ${r.failures}, ` +
            `${perRequest.toFixed(0)} µs CPU/request | ${formatCpu(cpu)}\n`,
        );
      }
  // Medians over the runs; each target was measured in turn within every run, so the ratios
  // compare like with like on a machine whose speed drifts.
  for (const [key, runs] of results) {
    const rps = median(runs.map((r) => r.rps));
    const base = median((results.get(`${key.split(' ')[0]} passthrough`) ?? []).map((r) => r.rps));
    const ratio = Number.isNaN(base) ? '' : `, ${((100 * rps) / base).toFixed(0)}% of the pass-through`;
    process.stdout.write(
      `median ${key}: ${rps.toFixed(0)} req/s, ${median(runs.map((r) => r.us)).toFixed(0)} µs CPU/request${ratio}\n`,
    );
  }
} finally {
  await proxyB?.proc.stop(40_000);
  await bench.close();
}
