import { describeLatency, summarize, throughput } from './load.ts';
import { pace } from './pacer.ts';
import { requestFor } from './phases.ts';
import { startBench, startPassthrough } from './setup.ts';
const rate = Number(process.argv[2] ?? 4800);
const bench = await startBench({ app: 'dist' });
const variants = [['default', []], ['semi16', ['--max-semi-space-size=16']], ['semi4', ['--max-semi-space-size=4']]] as const;
const servers: Array<{ name: string; url: string; stop: () => Promise<unknown> }> = [];
try {
  for (const [name, args] of variants) {
    const s = await startPassthrough(bench.fake.url, bench.cores.server, `${bench.logDir}/${name}.log`, [...args]);
    servers.push({ name, url: s.url, stop: () => s.proc.stop(10_000) });
  }
  const req = requestFor(bench, 'json');
  for (const s of servers) await throughput(s, req, 64, 15);
  for (let round = 0; round < 5; round++)
    for (const s of round % 2 ? [...servers].reverse() : servers) {
      const r = summarize([await pace(s, req, rate, 8)]);
      console.log(`round ${round + 1} ${s.name}: ${describeLatency(r)}`);
    }
} finally {
  for (const s of servers) await s.stop();
  await bench.close();
}
