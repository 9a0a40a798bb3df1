// Summarises a V8 .cpuprofile (from `node bench/run.ts --profile DIR`): the functions with the most
// self time, self time per source file (node_modules grouped by package), and time per owner —
// native and Node-internal work (socket writes, hashing) charged to the package that asked for it.
//   node bench/top-frames.ts FILE.cpuprofile [--top 40]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '40' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: node bench/top-frames.ts FILE.cpuprofile [--top N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node: each sample's time delta goes to the node on top of the stack.
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

function where(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url === '') return '(native/VM)';
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\/.*?\/(dist\/|app\/|bench\/|test\/)/, '$1');
}

/** The nearest frame on the stack that is not Node's own code: who asked for this work. */
function owner(id: number): string {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const { url, functionName } = (byId.get(cur) as ProfileNode).callFrame;
    if (url !== '' && !url.startsWith('node:')) return where(url);
    if (url === '' && cur === id && functionName.startsWith('(')) return functionName;
  }
  return 'node core (no caller)';
}

const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
const functions = new Map<string, number>();
const files = new Map<string, number>();
const owners = new Map<string, number>();
for (const [id, us] of self) {
  const frame = (byId.get(id) as ProfileNode).callFrame;
  add(functions, `${frame.functionName || '(anonymous)'} ${where(frame.url)}:${frame.lineNumber + 1}`, us);
  add(files, where(frame.url), us);
  add(owners, owner(id), us);
}

const top = Number(values.top);
const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
show('Self time by function', functions);
show('Self time by file or package', files);
show(
  'Time by owner (Node internals and native code charged to the nearest package or app file that called them)',
  owners,
);
