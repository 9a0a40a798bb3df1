// The open-loop load generator of the latency runs: requests at a fixed rate, evenly spaced, on raw
// keep-alive connections. On a two-CPU machine it shares its core with the fake upstream and
// Postgres, so it is kept light: the request is built once, each response is framed by
// http-parser-js (Content-Length or chunked) and its body is not kept. An undici Pool here cost
// ~95 µs of that core per request and promoted enough garbage to stall the generator 10–30 ms
// every second or so (bench/RESULTS.md).
import { connect, type Socket } from 'node:net';
import { HTTPParser } from 'http-parser-js';
import type { Request, Target } from './load.ts';

export interface PacedResult {
  /** Each answered request's latency in ms, from when it was due to its last byte. */
  latencies: Float64Array;
  sent: number;
  /** Not 2xx, a broken connection or a malformed answer, or no answer in time. */
  failures: number;
  /** Worst delay of a send behind its schedule (a busy load generator shows here). */
  maxLagMs: number;
}

const MAX_CONNECTIONS = 256;
/** Connections opened before the clock starts, so the first requests do not wait for a handshake. */
const WARM_CONNECTIONS = 16;

interface Connection {
  socket: Socket;
  parser: InstanceType<typeof HTTPParser>;
  /** When the request on this connection was due; undefined while idle. */
  dueAt: number | undefined;
  status: number;
}

/** The request as bytes on the wire: HTTP/1.1, keep-alive, with its length. */
function requestBytes(url: URL, req: Request): Buffer {
  const body = Buffer.from(req.body);
  const head = [`POST ${req.path} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(req.headers)) head.push(`${name}: ${value}`);
  head.push(`content-length: ${body.length}`, 'connection: keep-alive', '', '');
  return Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), body]);
}

/**
 * Sends `rate` requests per second for `seconds` (each 1 ms tick sends what is due) and measures
 * each from when it was due — a request that waits for a free connection counts its wait — to
 * its last byte. Waits at most 10 s for the last answers, then closes every connection.
 */
export async function pace(
  target: Target,
  req: Request,
  rate: number,
  seconds: number,
): Promise<PacedResult> {
  const url = new URL(target.url);
  const bytes = requestBytes(url, req);
  const total = Math.floor(rate * seconds);
  const latencies = new Float64Array(total);
  let answered = 0;
  let failures = 0;
  const all = new Set<Connection>();
  const idle: Connection[] = [];
  // Requests due while every connection was busy, by due time, oldest first.
  const waiting: number[] = [];
  let waitingHead = 0;
  let opening = 0;
  let stopped = false;

  const send = (c: Connection, dueAt: number) => {
    c.dueAt = dueAt;
    c.status = 0;
    c.socket.write(bytes);
  };
  const pump = () => {
    if (stopped) return;
    while (waitingHead < waiting.length && idle.length > 0)
      send(idle.pop() as Connection, waiting[waitingHead++] as number);
    if (waitingHead === waiting.length) {
      waiting.length = 0;
      waitingHead = 0;
    }
    while (waiting.length - waitingHead > opening && all.size + opening < MAX_CONNECTIONS) open();
  };
  const finish = (c: Connection, ok: boolean) => {
    if (c.dueAt === undefined) return;
    if (ok) latencies[answered++] = performance.now() - c.dueAt;
    else failures++;
    c.dueAt = undefined;
  };
  const open = () => {
    opening++;
    const socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    const parser = new HTTPParser(HTTPParser.RESPONSE);
    const c: Connection = { socket, parser, dueAt: undefined, status: 0 };
    parser[HTTPParser.kOnHeadersComplete] = (info) => {
      c.status = info.statusCode ?? 0;
    };
    parser[HTTPParser.kOnBody] = () => {};
    parser[HTTPParser.kOnMessageComplete] = () => {
      finish(c, c.status >= 200 && c.status < 300);
      idle.push(c);
      pump();
    };
    socket.on('connect', () => {
      opening--;
      all.add(c);
      idle.push(c);
      pump();
    });
    socket.on('data', (chunk: Buffer) => {
      if (parser.execute(chunk) instanceof Error) socket.destroy();
    });
    socket.on('close', () => {
      if (!all.delete(c)) opening--;
      const i = idle.indexOf(c);
      if (i >= 0) idle.splice(i, 1);
      finish(c, false);
      pump(); // a request waiting for a connection gets a new one
    });
    socket.on('error', () => {}); // 'close' follows and counts the failure
  };

  for (let i = 0; i < WARM_CONNECTIONS; i++) open();
  const warmDeadline = performance.now() + 5_000;
  while (all.size < WARM_CONNECTIONS && performance.now() < warmDeadline) await sleep(5);

  let sent = 0;
  let maxLagMs = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000));
      if (due > sent) maxLagMs = Math.max(maxLagMs, now - (t0 + (sent * 1000) / rate));
      for (; sent < due; sent++) waiting.push(now);
      pump();
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  const deadline = performance.now() + 10_000;
  while (answered + failures < sent && performance.now() < deadline) await sleep(20);
  stopped = true;
  failures = sent - answered;
  for (const c of all) c.socket.destroy();
  return { latencies: latencies.subarray(0, answered), sent, failures, maxLagMs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
