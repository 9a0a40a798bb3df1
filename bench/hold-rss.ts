// The RSS of a freshly started proxy while it holds `--streams` open streams, as in the benchmark's
// last phase, once for each set of node flags given (an empty one: the proxy's own flags only), so
// the memory cost of a V8 setting can be weighed.
//   node bench/hold-rss.ts [--streams 1000] -- '' '--max-semi-space-size=32' ...
import { parseArgs } from 'node:util';
import { requestFor } from './phases.ts';
import { startBench, startProxyB } from './setup.ts';
import { describeHold, holdStreams } from './streams.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { streams: { type: 'string', default: '1000' } },
});
const bench = await startBench({ app: 'dist' });
try {
  for (const [i, flags] of (positionals.length > 0 ? positionals : ['']).entries()) {
    const proxy = await startProxyB(bench, { name: `hold${i}`, nodeArgs: flags.split(' ').filter(Boolean) });
    try {
      const h = await holdStreams({
        target: { name: `hold${i}`, url: proxy.url },
        req: requestFor(bench, 'stream'),
        count: Number(o.streams),
        serverPid: proxy.proc.pid,
        fake: bench.fake,
        holdSeconds: 5,
      });
      process.stdout.write(`${flags || '(no extra flags)'}: ${describeHold(h)}\n`);
    } finally {
      await proxy.proc.stop(40_000);
    }
  }
} finally {
  await bench.close();
}
