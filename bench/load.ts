// The two load shapes: closed-loop throughput (autocannon, N connections flat out) and open-loop
// latency at a fixed request rate (our own pacer: autocannon's rate limit lets each connection fire
// its whole per-second quota back to back at the top of every second, which measures bursts).
import autocannon from 'autocannon';
import { Pool } from 'undici';

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

/**
 * Sends `rate` requests per second, evenly spaced (each 1 ms tick sends what is due), for
 * `seconds`, over a pool of keep-alive connections, and reports the latency of each request from
 * its send to its last body byte. Waits at most 10 s for the last answers.
 */
export async function paced(target: Target, req: Request, rate: number, seconds: number): Promise<Latency> {
  const pool = new Pool(target.url, { connections: 256, keepAliveTimeout: 30_000 });
  const total = Math.floor(rate * seconds);
  const latencies = new Float64Array(total).fill(Number.NaN);
  let sent = 0;
  let done = 0;
  let failures = 0;
  let maxLagMs = 0;
  const one = async (i: number) => {
    const start = performance.now();
    try {
      const res = await pool.request({
        path: req.path,
        method: 'POST',
        headers: req.headers,
        body: req.body,
      });
      await res.body.dump({ limit: Number.POSITIVE_INFINITY });
      if (res.statusCode < 200 || res.statusCode >= 300) failures++;
    } catch {
      failures++;
    }
    latencies[i] = performance.now() - start;
    done++;
  };
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000));
      if (due > sent) maxLagMs = Math.max(maxLagMs, now - (t0 + (sent * 1000) / rate));
      while (sent < due) void one(sent++);
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  const deadline = performance.now() + 10_000;
  while (done < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  failures += sent - done;
  await pool.destroy();
  const sorted = latencies.filter(Number.isFinite).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), max: at(1), sent, failures, maxLagMs };
}
