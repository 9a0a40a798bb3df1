// What V8's collector does per request in the proxy, from its own counters (`--trace-gc-nvp`), for
// one or more builds measured in turn: bytes allocated, surviving a scavenge and promoted to the old
// generation per request, the scavenges' pauses, and the full collections with their longest
// incremental step. Unlike timings, these counters hardly depend on the machine's speed; what
// survives does depend on how many requests are in flight, so the load is either `--connections`
// flat out (1: one request in flight at a time) or a fixed `--rate` with up to 64 connections (then
// with each round's p99 beside the collector's figures).
//   node bench/gc-trace.ts [--connections 1 | --rate 4900] [--seconds 15] [--rounds 2] [--mode json|stream] BUILD...
// BUILD is a main.js (default: this build's), optionally with node flags after `|`:
//   'dist/app/src/main.js|--no-allocation-site-pretenuring'
// or `passthrough`: a second copy of (b), traced the same way.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { summarize as latencyOf, throughput } from './load.ts';
import { pace } from './pacer.ts';
import { requestFor } from './phases.ts';
import { startBench, startPassthrough, startProxyB } from './setup.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '1' },
    rate: { type: 'string' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'json' },
  },
});
const builds = positionals.length > 0 ? positionals : ['dist/app/src/main.js'];
const mode = o.mode === 'stream' ? 'stream' : 'json';

interface Traced {
  build: string;
  log: string;
  /** When the process was started (its trace counts milliseconds from about then). */
  startedAt: number;
  /** The measured stretches, in milliseconds since `startedAt`. */
  windows: Array<[number, number]>;
  requests: number;
  /** Each round's p99 in ms, at a fixed rate. */
  p99s: number[];
}

const bench = await startBench({ app: 'dist' });
const servers: Array<{ url: string; traced: Traced; stop: () => Promise<void> }> = [];
try {
  for (const [i, build] of builds.entries()) {
    const [main, ...flags] = build.split('|');
    const name = `gc${i}`;
    const log = `${bench.logDir}/${name}.log`;
    const nodeArgs = ['--trace-gc-nvp', ...flags];
    const startedAt = Date.now();
    const s =
      main === 'passthrough'
        ? await startPassthrough(bench.fake.url, bench.cores.server, log, nodeArgs)
        : await startProxyB(bench, { main, name, nodeArgs });
    const traced: Traced = { build, log, startedAt, windows: [], requests: 0, p99s: [] };
    servers.push({ url: s.url, traced, stop: () => s.proc.stop(40_000) });
  }
  const req = requestFor(bench, mode);
  for (const s of servers) await throughput({ name: 'warm-up', url: s.url }, req, 64, 8);
  for (let round = 0; round < Number(o.rounds); round++)
    for (const { url, traced } of servers) {
      const target = { name: traced.build, url };
      const from = Date.now() - traced.startedAt;
      if (o.rate !== undefined) {
        const r = await pace(target, req, Number(o.rate), Number(o.seconds));
        traced.requests += r.sent - r.failures;
        traced.p99s.push(latencyOf([r]).p99);
      } else {
        traced.requests += (await throughput(target, req, Number(o.connections), Number(o.seconds))).ok;
      }
      traced.windows.push([from, Date.now() - traced.startedAt]);
    }
  for (const { stop } of servers) await stop();
  const load = o.rate !== undefined ? `${o.rate}/s` : `${o.connections} connection(s) flat out`;
  process.stdout.write(`${mode}, ${load}, ${o.rounds} rounds of ${o.seconds} s per build\n`);
  for (const { traced } of servers) process.stdout.write(`${summarize(traced)}\n`);
} finally {
  for (const { stop } of servers) await stop();
  await bench.close();
}

/** One line per build from its `--trace-gc-nvp` lines inside the measured windows. */
function summarize(t: Traced): string {
  let scavenges = 0;
  let allocated = 0;
  let survived = 0;
  let promoted = 0;
  let scavengePause = 0;
  const full: string[] = [];
  for (const line of readFileSync(t.log, 'utf8').split('\n')) {
    const at = /\s([\d.]+) ms: pause=/.exec(line);
    if (at === null || !t.windows.some(([a, b]) => a <= Number(at[1]) && Number(at[1]) <= b)) continue;
    const f = Object.fromEntries([...line.matchAll(/(\S+)=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
    if (/ gc=s /.test(line)) {
      scavenges++;
      allocated += f.allocated ?? 0;
      survived += f.new_space_survived ?? 0;
      promoted += f.promoted ?? 0;
      scavengePause += f.pause ?? 0;
    } else {
      full.push(`${(f.pause ?? 0).toFixed(1)}/${(f.incremental_longest_step ?? 0).toFixed(1)}`);
    }
  }
  const per = (bytes: number) => `${Math.round(bytes / Math.max(t.requests, 1))} B`;
  return (
    `${t.build}: ${t.requests} requests | per request: allocated ${per(allocated)}, survived ${per(survived)}, ` +
    `promoted ${per(promoted)} | ${scavenges} scavenges, mean pause ${(scavengePause / Math.max(scavenges, 1)).toFixed(2)} ms | ` +
    `${full.length} full collections (final pause/longest incremental step, ms): ${full.join(' ') || '-'}` +
    (t.p99s.length > 0 ? ` | p99 per round: ${t.p99s.map((x) => x.toFixed(1)).join(', ')} ms` : '')
  );
}
