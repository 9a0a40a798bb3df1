// A pinned child of bench/stalls.ts. `node bench/spin.ts SECONDS` spins for that long and prints, as
// JSON, the gaps in its own progress: stretches of over 0.5 ms in which it did not run. With
// `--burn` it only keeps its CPU busy.
const seconds = Number(process.argv[2]);
if (!(seconds > 0 && seconds <= 60)) throw new Error('usage: node bench/spin.ts SECONDS [--burn]');
const end = performance.now() + seconds * 1000;
const gaps: number[] = [];
let last = performance.now();
for (let now = last; now < end; now = performance.now()) {
  if (now - last > 0.5) gaps.push(now - last);
  last = now;
}
if (!process.argv.includes('--burn')) process.stdout.write(`${JSON.stringify(gaps)}\n`);
