/**
 * The V8 flags the proxy runs with, in its image and in the benchmark (bench/RESULTS.md has the
 * measurements behind both; the Dockerfile and `npm start` spell out the same command):
 * - A smaller young generation (16 MB semi-spaces, V8's default grows to 32+) keeps 1,000 open
 *   streams under 200 MB RSS at unchanged throughput.
 * - The old generation may grow to twice what the last full collection kept. Left to itself, V8
 *   (which sizes that room by how fast it collects) ran a full mark-compact every 2–5 s in a proxy
 *   that had been under load a while, each holding every request for 5–35 ms.
 */
export const APP_NODE_FLAGS = ['--max-semi-space-size=16', '--heap-growing-percent=100'];
