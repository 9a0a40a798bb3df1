// Many streams open at once: the fake upstream holds every stream after its first event while a
// client keeps `count` SSE requests open through the server under test and its RSS is sampled.
import { Agent, type ClientRequest, request } from 'node:http';
import type { FakeProcess } from './fake-control.ts';
import type { Request, Target } from './load.ts';
import { memoryMB } from './procs.ts';

export interface HoldResult {
  count: number;
  /** Streams whose first event reached the client while held. */
  opened: number;
  /** Streams that ended with `data: [DONE]` after the release. */
  completed: number;
  failures: number;
  rssBeforeMB: number;
  /** Highest VmRSS sampled while all streams were open. */
  rssHeldMB: number;
  /** Of that sample: anonymous memory (the rest is mapped files, mostly the node binary). */
  anonHeldMB: number;
  rssAfterMB: number;
}

/** One line for a hold, as the raw output shows it. */
export function describeHold(h: HoldResult): string {
  return (
    `opened ${h.opened}, completed ${h.completed}, failures ${h.failures}; ` +
    `RSS before ${h.rssBeforeMB.toFixed(0)} MB, while held ${h.rssHeldMB.toFixed(0)} MB, after ${h.rssAfterMB.toFixed(0)} MB`
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Opens `count` streams through `target` (100 every 50 ms, so the listen backlog never overflows),
 * waits until the fake holds them all and every client has its first event, samples the server's
 * RSS for `holdSeconds`, then releases them and waits for each to finish. Every wait is bounded.
 */
export async function holdStreams(opts: {
  target: Target;
  req: Request;
  count: number;
  serverPid: number;
  fake: FakeProcess;
  holdSeconds: number;
}): Promise<HoldResult> {
  const { target, req, count } = opts;
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const clients: ClientRequest[] = [];
  let opened = 0;
  let completed = 0;
  let failures = 0;
  const rssBeforeMB = memoryMB(opts.serverPid);
  if ((await opts.fake.send('hold')) !== 'ok') throw new Error('the fake did not hold streams');
  try {
    for (let i = 0; i < count; i++) {
      const c = request(target.url + req.path, { method: 'POST', headers: req.headers, agent }, (res) => {
        let first = true;
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          if (first) opened++;
          first = false;
          tail = (tail + text).slice(-64);
        });
        res.on('end', () => {
          if (res.statusCode === 200 && tail.includes('data: [DONE]')) completed++;
          else failures++;
        });
      });
      c.on('error', () => failures++);
      c.end(req.body);
      clients.push(c);
      if (i % 100 === 99) await sleep(50);
    }
    const held = await opts.fake.send(`held ${count}`);
    if (held !== 'ok') throw new Error(`the fake holds fewer than ${count} streams (${held})`);
    await until(`${count} first events at the client`, () => opened + failures >= count, 60_000);
    let rssHeldMB = 0;
    let anonHeldMB = 0;
    for (let t = 0; t < opts.holdSeconds * 4; t++) {
      const rss = memoryMB(opts.serverPid);
      if (rss > rssHeldMB) {
        rssHeldMB = rss;
        anonHeldMB = memoryMB(opts.serverPid, 'RssAnon');
      }
      await sleep(250);
    }
    await opts.fake.send('release');
    await until('the released streams to finish', () => completed + failures >= count, 60_000);
    await sleep(1000);
    return {
      count,
      opened,
      completed,
      failures,
      rssBeforeMB,
      rssHeldMB,
      anonHeldMB,
      rssAfterMB: memoryMB(opts.serverPid),
    };
  } finally {
    await opts.fake.send('release').catch(() => {});
    for (const c of clients) c.destroy();
    agent.destroy();
  }
}
