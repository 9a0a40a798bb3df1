// A quick comparison for performance work (not the benchmark of record, which is bench/run.ts):
// throughput of (b) the pass-through and (c) the proxy, JSON and streamed, with the CPU each used
// per request. Same set-up and pinning as the full benchmark.
//   node bench/quick.ts [--duration 6] [--runs 2] [--app dist|src] [--profile DIR] [--env NAME=VALUE]...
import { parseArgs } from 'node:util';
import { formatCpu, startCpuMeter } from './cpu.ts';
import { throughput } from './load.ts';
import { requestFor } from './phases.ts';
import { MODES } from './report.ts';
import { startBench } from './setup.ts';

const { values: o } = parseArgs({
  options: {
    duration: { type: 'string', default: '6' },
    runs: { type: 'string', default: '2' },
    app: { type: 'string', default: 'dist' },
    profile: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const bench = await startBench({
  app: o.app === 'src' ? 'src' : 'dist',
  serverCore: 0,
  loadCore: 1,
  profileDir: o.profile,
  env: Object.fromEntries(o.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
});
try {
  const targets = [
    { name: 'passthrough', url: bench.passthrough.url },
    { name: 'proxy', url: bench.proxy.url },
  ];
  for (const m of MODES) for (const t of targets) await throughput(t, requestFor(bench, m), 64, 2);
  for (let run = 1; run <= Number(o.runs); run++)
    for (const m of MODES)
      for (const t of targets) {
        const meter = startCpuMeter(bench.cpuGroups);
        const r = await throughput(t, requestFor(bench, m), 64, Number(o.duration));
        const cpu = meter.stop();
        const perRequest = ((cpu.groups[t.name] ?? 0) * 10_000) / Math.max(1, r.rps);
        process.stdout.write(
          `${m} ${t.name}: ${r.rps.toFixed(0)} req/s, failures ${r.failures}, ` +
            `${perRequest.toFixed(0)} µs CPU/request | ${formatCpu(cpu)}\n`,
        );
      }
} finally {
  await bench.close();
}
