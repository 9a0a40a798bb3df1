// The two load shapes: closed-loop throughput (autocannon, N connections flat out) and open-loop
// latency at a fixed request rate (our own pacer, bench/pacer.ts: autocannon's rate limit lets each
// connection fire its whole per-second quota back to back at the top of every second, which
// measures bursts).
import autocannon from 'autocannon';
import { type PacedResult, pace } from './pacer.ts';

export interface Target {
  name: string;
  url: string;
}

export interface Request {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface Throughput {
  /** 2xx responses per second. */
  rps: number;
  /** 2xx responses, and the seconds they were counted over. */
  ok: number;
  seconds: number;
  /** Responses that were not 2xx, transport errors and timeouts (all should be 0). */
  failures: number;
}

/** Runs `connections` keep-alive connections flat out for `seconds` and counts the 2xx answers. */
export async function throughput(
  target: Target,
  req: Request,
  connections: number,
  seconds: number,
): Promise<Throughput> {
  const r = await autocannon({
    url: target.url + req.path,
    connections,
    duration: seconds,
    method: 'POST',
    headers: req.headers,
    body: req.body,
    timeout: 10,
  });
  return {
    rps: r['2xx'] / r.duration,
    ok: r['2xx'],
    seconds: r.duration,
    failures: r.non2xx + r.errors + r.timeouts,
  };
}

export interface Latency {
  p50: number;
  p99: number;
  max: number;
  /** Requests sent, and those that failed (not 2xx, or a transport error). */
  sent: number;
  failures: number;
  /** Worst delay of a send behind its schedule (a busy load generator shows here). */
  maxLagMs: number;
}

/** Latency at a fixed request rate (see {@link pace}), summarised. */
export async function paced(target: Target, req: Request, rate: number, seconds: number): Promise<Latency> {
  return summarize([await pace(target, req, rate, seconds)]);
}

/** One line for a measured latency, as the raw output shows it. */
export function describeLatency(x: Latency): string {
  return `p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, max ${x.max.toFixed(1)} ms, sent ${x.sent}, failures ${x.failures}, generator lag max ${x.maxLagMs.toFixed(1)} ms`;
}

/** Summarises one paced run, or several parts of one pooled as if they were one run. */
export function summarize(parts: readonly PacedResult[]): Latency {
  const sorted = new Float64Array(parts.reduce((n, p) => n + p.latencies.length, 0));
  let filled = 0;
  for (const p of parts) {
    sorted.set(p.latencies, filled);
    filled += p.latencies.length;
  }
  sorted.sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return {
    p50: at(0.5),
    p99: at(0.99),
    max: at(1),
    sent: parts.reduce((n, p) => n + p.sent, 0),
    failures: parts.reduce((n, p) => n + p.failures, 0),
    maxLagMs: Math.max(...parts.map((p) => p.maxLagMs)),
  };
}
