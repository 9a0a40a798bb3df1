// The measured phases of the benchmark. Each measurement records where the CPU went; one that
// foreign load disturbed (other processes using more than `maxOther`% of a core) is repeated, at
// most `retries` times, so each median is taken over runs the benchmark had the machine for.
import { formatCpu, startCpuMeter } from './cpu.ts';
import {
  describeLatency,
  type Latency,
  paced,
  type Request,
  summarize,
  type Target,
  type Throughput,
  throughput,
} from './load.ts';
import { type PacedResult, pace } from './pacer.ts';
import { MODES, type Mode, TARGETS, type TargetName } from './report.ts';
import type { Bench } from './setup.ts';

export interface PhaseContext {
  bench: Bench;
  targets: Record<TargetName, Target>;
  say: (line: string) => void;
  connections: number;
  seconds: number;
  runs: number;
  maxOther: number;
  retries: number;
}

export type PerTarget<T> = Record<TargetName, Record<Mode, T[]>>;

const perTarget = <T>(): PerTarget<T> => ({
  fake: { json: [], stream: [] },
  passthrough: { json: [], stream: [] },
  proxy: { json: [], stream: [] },
});

/** The same chat completion for every target (the fake and the pass-through accept any key). */
export function requestFor(bench: Bench, mode: Mode): Request {
  const body = {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello.' }],
    max_tokens: 16,
    stream: mode === 'stream',
  };
  const headers = { authorization: `Bearer ${bench.proxyKey}`, 'content-type': 'application/json' };
  return { path: '/v1/chat/completions', headers, body: JSON.stringify(body) };
}

/** One request per target and mode, checked, so a broken set-up never produces figures. */
export async function probe(c: PhaseContext): Promise<void> {
  for (const t of TARGETS)
    for (const m of MODES) {
      const req = requestFor(c.bench, m);
      const res = await fetch(c.targets[t].url + req.path, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
      });
      const text = await res.text();
      const done = m === 'json' ? text.includes('"choices"') : text.endsWith('data: [DONE]\n\n');
      if (res.status !== 200 || !done)
        throw new Error(`probe ${t}/${m}: HTTP ${res.status} ${text.slice(0, 300)}`);
      if (t === 'proxy' && !res.headers.has('x-ratelimit-remaining-requests'))
        throw new Error('probe proxy: no x-ratelimit-* headers, so the rate limiter did not run');
    }
}

/** Unrecorded load on every target and mode, so each is JIT-compiled before it is measured. */
export async function warmUp(c: PhaseContext, seconds: number): Promise<void> {
  for (const t of TARGETS)
    for (const m of MODES) await throughput(c.targets[t], requestFor(c.bench, m), c.connections, seconds);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measured<T>(c: PhaseContext, label: string, run: () => Promise<T>, show: (r: T) => string) {
  for (let attempt = 0; ; attempt++) {
    const meter = startCpuMeter(c.bench.cpuGroups);
    const result = await run();
    const cpu = meter.stop();
    const disturbed = cpu.other > c.maxOther;
    const note = disturbed ? ` | DISTURBED (other ${cpu.other}% > ${c.maxOther}%)` : '';
    c.say(`${label}: ${show(result)} | ${formatCpu(cpu)}${note}`);
    if (!disturbed || attempt >= c.retries) return result;
    await sleep(20_000);
  }
}

/**
 * The order in which one run measures (b) and (c), each for half the duration at a time: b c c b.
 * This machine's speed drifts by tens of percent within a minute; measured one after the other,
 * the server measured second would take the drift alone. In this order a steady drift weighs on
 * both alike, and (b) and (c) still each get the whole duration. Throughput and latency both
 * measure in this order; a latency run's p50 and p99 are taken over its two parts pooled.
 */
const PAIR_ORDER = ['passthrough', 'proxy', 'proxy', 'passthrough'] as const;

/** Requests per second at `connections` connections, each target and mode, `runs` times. */
export async function throughputRuns(c: PhaseContext): Promise<PerTarget<number>> {
  const rps = perTarget<number>();
  const show = (x: Throughput) => `${x.rps.toFixed(0)} req/s, failures ${x.failures}`;
  for (let run = 1; run <= c.runs; run++)
    for (const m of MODES) {
      const req = requestFor(c.bench, m);
      const direct = await measured(
        c,
        `throughput run ${run} ${m} fake`,
        () => throughput(c.targets.fake, req, c.connections, c.seconds),
        show,
      );
      rps.fake[m].push(direct.failures === 0 ? direct.rps : Number.NaN);
      const none = () => ({ ok: 0, seconds: 0, failures: 0 });
      const sum = { passthrough: none(), proxy: none() };
      for (const [i, t] of PAIR_ORDER.entries()) {
        const r = await measured(
          c,
          `throughput run ${run} ${m} ${t} (part ${i + 1} of ${PAIR_ORDER.length})`,
          () => throughput(c.targets[t], req, c.connections, c.seconds / 2),
          show,
        );
        const s = sum[t];
        s.ok += r.ok;
        s.seconds += r.seconds;
        s.failures += r.failures;
      }
      const b = sum.passthrough.ok / sum.passthrough.seconds;
      const p = sum.proxy.ok / sum.proxy.seconds;
      rps.passthrough[m].push(sum.passthrough.failures === 0 ? b : Number.NaN);
      rps.proxy[m].push(sum.proxy.failures === 0 ? p : Number.NaN);
      c.say(
        `throughput run ${run} ${m}: (b) ${b.toFixed(0)} req/s, (c) ${p.toFixed(0)} req/s, (c)/(b) ${((100 * p) / b).toFixed(0)}%`,
      );
    }
  return rps;
}

/**
 * Latency at a fixed rate per mode, `runs` times: (b) and (c) in the order b c c b, and, with
 * `withFake`, the fake upstream alone first.
 */
export async function latencyRuns(
  c: PhaseContext,
  rate: Record<Mode, number>,
  withFake = true,
): Promise<PerTarget<Latency>> {
  const lat = perTarget<Latency>();
  const targets: readonly TargetName[] = withFake ? TARGETS : ['passthrough', 'proxy'];
  // The pacer's own code path (undici in this process) warms up first: a cold first run is
  // dominated by the load generator's JIT compilation and heap growth, not by the server.
  for (const m of MODES)
    for (const t of targets) await paced(c.targets[t], requestFor(c.bench, m), rate[m], 3);
  const keep = (x: Latency) => (x.failures === 0 ? x : { ...x, p50: Number.NaN, p99: Number.NaN });
  for (let run = 1; run <= c.runs; run++)
    for (const m of MODES) {
      const req = requestFor(c.bench, m);
      const label = `latency run ${run} ${m}`;
      if (withFake) {
        const direct = await measured(
          c,
          `${label} fake @${rate[m]}/s`,
          () => paced(c.targets.fake, req, rate[m], c.seconds),
          describeLatency,
        );
        lat.fake[m].push(keep(direct));
      }
      const parts: Record<(typeof PAIR_ORDER)[number], PacedResult[]> = { passthrough: [], proxy: [] };
      for (const [i, t] of PAIR_ORDER.entries()) {
        const part = await measured(
          c,
          `${label} ${t} @${rate[m]}/s (part ${i + 1} of ${PAIR_ORDER.length})`,
          () => pace(c.targets[t], req, rate[m], c.seconds / 2),
          (x) => describeLatency(summarize([x])),
        );
        parts[t].push(part);
      }
      for (const t of ['passthrough', 'proxy'] as const) {
        const pooled = summarize(parts[t]);
        c.say(`${label} ${t} @${rate[m]}/s, both parts: ${describeLatency(pooled)}`);
        lat[t][m].push(keep(pooled));
      }
    }
  return lat;
}
