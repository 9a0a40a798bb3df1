// The RSS of a freshly started proxy while it holds `--streams` open streams, as in the benchmark's
// last phase, once for each variant given: node flags and `NAME=VALUE` environment variables (an
// empty variant: the proxy as it ships), so the memory cost of a setting can be weighed. Besides
// the RSS it reports the anonymous part (heaps, malloc's arenas, stacks); the rest is mapped
// files, mostly the node binary's own pages.
//   node bench/hold-rss.ts [--streams 1000] -- '' '--max-semi-space-size=32' 'MALLOC_ARENA_MAX=2' ...
import { parseArgs } from 'node:util';
import { requestFor } from './phases.ts';
import { envOf, startBench, startProxyB } from './setup.ts';
import { describeHold, holdStreams } from './streams.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { streams: { type: 'string', default: '1000' } },
});
const bench = await startBench({ app: 'dist' });
try {
  for (const [i, flags] of (positionals.length > 0 ? positionals : ['']).entries()) {
    const words = flags.split(' ').filter(Boolean);
    const env = envOf(words.filter((w) => !w.startsWith('-')));
    const nodeArgs = words.filter((w) => w.startsWith('-'));
    const proxy = await startProxyB(bench, { name: `hold${i}`, nodeArgs, env });
    try {
      const h = await holdStreams({
        target: { name: `hold${i}`, url: proxy.url },
        req: requestFor(bench, 'stream'),
        count: Number(o.streams),
        serverPid: proxy.proc.pid,
        fake: bench.fake,
        holdSeconds: 5,
      });
      process.stdout.write(
        `${flags || '(as it ships)'}: ${describeHold(h)}; while held, anonymous ${h.anonHeldMB.toFixed(0)} MB\n`,
      );
    } finally {
      await proxy.proc.stop(40_000);
    }
  }
} finally {
  await bench.close();
}
