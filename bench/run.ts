// The benchmark of issue 5 (not a test): (a) the fake upstream direct, (b) the bare pass-through
// and (c) the proxy with auth, rate limits and usage recording, on JSON and streamed chat
// completions: throughput at 64 connections and latency at a fixed rate of half (b)'s throughput,
// medians of 3 runs, (b) and (c) in the order b c c b within each run (half the duration each time);
// then 1,000 streams held open through a freshly started (c) and (b), with their RSS. Every run
// has a fixed duration, every wait a bound, and every process is stopped by PID at the end, also
// on failure (and killed by the exit handlers on a crash).
//   node bench/run.ts [--duration 10] [--runs 3] [--streams 1000] [--app dist|src] [--profile DIR]
//                     [--max-other 20] [--retries 3] [--out FILE]
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { latencyRuns, type PhaseContext, probe, requestFor, throughputRuns, warmUp } from './phases.ts';
import { memoryMB } from './procs.ts';
import { figures, goals, halfOf, logSummary, machineInfo, supplementary, table } from './report.ts';
import { POSTGRES_NICE, startBench, startPassthrough, startProxy } from './setup.ts';
import { describeStalls, machineStalls } from './stalls.ts';
import { describeHold, type HoldResult, holdStreams } from './streams.ts';

const { values: o } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    streams: { type: 'string', default: '1000' },
    app: { type: 'string', default: 'dist' },
    profile: { type: 'string' },
    'max-other': { type: 'string', default: '20' },
    retries: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
/** How long the spinner of `machineStalls` runs, with the other CPUs idle and then busy. */
const STALL_SECONDS = 8;
const stamp = new Date().toISOString().slice(0, 16).replace(':', '');
const outFile = o.out ?? `bench/results/${stamp}Z.txt`;
mkdirSync(dirname(outFile), { recursive: true });
const out = createWriteStream(outFile);
const say = (line: string) => {
  process.stdout.write(`${line}\n`);
  out.write(`${line}\n`);
};
// The whole run is bounded (each measurement, its repeats and the waits between them); this is the
// safety net. On exit, test/helpers/processes.ts kills every registered PID. There are 84
// measurements (72 of them halves of a b c c b pair), each bounded by its duration plus 22 s.
const measurements = 84 * (Number(o.retries) + 1) * (Number(o.duration) + 22);
const watchdog = setTimeout(
  () => {
    say(`watchdog: the benchmark ran for over ${Math.round(measurements / 60) + 15} minutes; aborting`);
    process.exit(2);
  },
  (measurements + 15 * 60) * 1000,
);

async function main(): Promise<number> {
  for (const line of machineInfo()) say(line);
  say(`command: ${process.argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const app = o.app === 'src' ? 'src' : 'dist';
  const bench = await startBench({ app, profileDir: o.profile });
  let failed = false;
  try {
    const { proxy, passthrough, fake, cores } = bench;
    say(
      `pinned: proxy (${app}, pid ${proxy.proc.pid}) and pass-through (pid ${passthrough.proc.pid}) on CPU ${cores.server}; ` +
        `fake upstream (pid ${fake.proc.pid}) on CPU ${cores.fake}; this load generator (pid ${process.pid}) on CPU ${cores.loadgen}; ` +
        `Postgres (pid ${bench.stack.pg.pid}, nice ${POSTGRES_NICE}) and Redis (pid ${bench.stack.redis.pid}) on CPU ${cores.stores}`,
    );
    const others = [...new Set([cores.fake, cores.loadgen, cores.stores])].filter(
      (cpu) => cpu !== cores.server,
    );
    const stalls = await machineStalls(cores.server, others, STALL_SECONDS, bench.logDir);
    say(
      `machine stalls on CPU ${cores.server} (a spinner pinned there, ${STALL_SECONDS} s each): ` +
        `other CPUs idle: ${describeStalls(stalls.quiet)}; other CPUs busy: ${describeStalls(stalls.busy)}`,
    );
    const c: PhaseContext = {
      bench,
      targets: {
        fake: { name: 'fake', url: fake.url },
        passthrough: { name: 'passthrough', url: passthrough.url },
        proxy: { name: 'proxy', url: proxy.url },
      },
      say,
      connections: Number(o.connections),
      seconds: Number(o.duration),
      runs: Number(o.runs),
      maxOther: Number(o['max-other']),
      retries: Number(o.retries),
    };
    await probe(c);

    await warmUp(c, Number(o.warmup));
    const rps = await throughputRuns(c);
    const rate = halfOf(rps.passthrough);
    const lat = await latencyRuns(c, rate);
    // Supplementary: (b) and (c) at half (c)'s own throughput, a rate (c) can sustain, to tell the
    // latency the proxy adds per request apart from queueing when (c) is driven past its capacity.
    const ownRate = halfOf(rps.proxy);
    const own = await latencyRuns(c, ownRate, false);
    for (const [name, server] of [
      ['proxy', proxy],
      ['passthrough', passthrough],
    ] as const) {
      const pid = server.proc.pid;
      say(
        `${name} after the load runs: RSS ${memoryMB(pid).toFixed(0)} MB, peak ${memoryMB(pid, 'VmHWM').toFixed(0)} MB`,
      );
    }

    await proxy.proc.stop(40_000);
    say(`proxy stopped by SIGTERM: exit code ${proxy.proc.child.exitCode}`);
    const { rows } = await bench.stack.db.query<{ n: string; ok: string }>(
      'SELECT count(*) AS n, count(*) FILTER (WHERE status_code = 200) AS ok FROM usage_logs',
    );
    say(`usage_logs rows written by (c): ${rows[0]?.n} (${rows[0]?.ok} with status 200)`);
    say(`proxy log lines: ${logSummary(join(bench.logDir, 'proxy.log'))}`);

    // 1,000 open streams, each server freshly started (so the load runs above do not count in its
    // memory, and the burst does not count in the load runs' figures).
    const holds: HoldResult[] = [];
    for (const name of ['proxy', 'passthrough'] as const) {
      const log = join(bench.logDir, `${name}-streams.log`);
      const server =
        name === 'proxy'
          ? await startProxy(bench.stack, fake.url, { core: cores.server, logFile: log, app })
          : await startPassthrough(fake.url, cores.server, log);
      try {
        const count = Number(o.streams);
        const h = await holdStreams({
          target: { name, url: server.url },
          req: requestFor(bench, 'stream'),
          count,
          serverPid: server.proc.pid,
          fake,
          holdSeconds: 5,
        });
        say(`${count} open streams through ${name} (freshly started): ${describeHold(h)}`);
        holds.push(h);
      } finally {
        await server.proc.stop(40_000);
      }
    }

    const fig = figures(rps, lat);
    say('');
    say(`Medians of ${c.runs} runs of ${c.seconds} s:`);
    for (const line of table(fig, rate)) say(line);
    say('');
    say(`Supplementary, at half (c)'s throughput (medians of ${c.runs} runs):`);
    for (const line of supplementary(own, ownRate)) say(line);
    say('');
    for (const line of goals(fig, holds[0] as HoldResult)) say(line);
    return 0;
  } catch (err) {
    failed = true;
    say(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}`);
    say(`the processes' logs are kept in ${bench.logDir}`);
    return 1;
  } finally {
    await bench.close(failed);
  }
}

process.exitCode = await main();
clearTimeout(watchdog);
say(`raw output: ${outFile}`);
out.end();
