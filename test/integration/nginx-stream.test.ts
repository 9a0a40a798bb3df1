// Server-sent events through nginx, event by event, over HTTP/1.1 and HTTP/2: first in front of
// the fake upstream alone, then in front of the real app (node app/src/main.ts, Postgres, Redis)
// with the fake behind it, where the app's X-Request-Id must be the one nginx gave it.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StreamLatch } from '../fake-upstream/index.ts';
import { startFakeUpstream } from '../fake-upstream/index.ts';
import { startApp } from '../helpers/app.ts';
import {
  type EdgeStream,
  type NginxServer,
  openStream,
  startNginx,
  writeSelfSignedCert,
} from '../helpers/nginx.ts';
import { registerTempDir, waitFor } from '../helpers/processes.ts';
import { startStack } from '../helpers/stack.ts';

/** What nginx proxies to: its HOST:PORT, how to hold the upstream's streams, the client's key. */
interface Backend {
  upstream: string;
  holdStreams(): StreamLatch;
  setDeltaDelay(ms: number): void;
  authorization: string;
  /** The app's own log (real app only). */
  log?(): string;
  stop(): Promise<void>;
}

async function fakeBackend(): Promise<Backend> {
  const fake = await startFakeUpstream();
  return {
    upstream: `127.0.0.1:${fake.port}`,
    holdStreams: () => fake.holdStreams(),
    setDeltaDelay: (ms) => fake.setDeltaDelay(ms),
    authorization: 'Bearer sk-fake-upstream-key',
    stop: () => fake.close(),
  };
}

async function appBackend(): Promise<Backend> {
  const stack = await startStack({ upstreamKeys: ['sk-upstream-for-nginx-tests'] });
  try {
    const { key } = await stack.issueKey();
    const app = await startApp({ env: stack.env });
    return {
      upstream: `127.0.0.1:${app.port}`,
      holdStreams: () => stack.fake.holdStreams(),
      setDeltaDelay: (ms) => stack.fake.setDeltaDelay(ms),
      authorization: `Bearer ${key}`,
      log: () => app.process.output(),
      stop: async () => {
        await app.stop();
        await stack.destroy();
      },
    };
  } catch (err) {
    await stack.destroy();
    throw err;
  }
}

const CHAT = JSON.stringify({
  model: 'gpt-4o-mini',
  stream: true,
  messages: [{ role: 'user', content: 'Count to ten, slowly.' }],
});
const events = (text: string) => text.split('\n').filter((line) => line.startsWith('data: '));

for (const [name, startBackend] of [
  ['the fake upstream', fakeBackend],
  ['the real app', appBackend],
] as const) {
  describe(`nginx streaming in front of ${name}`, () => {
    let backend: Backend;
    let edge: NginxServer;
    const post = (headers: Record<string, string> = {}): Promise<EdgeStream> =>
      openStream(`${edge.httpsUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: backend.authorization, ...headers },
        body: CHAT,
      });

    before(async () => {
      backend = await startBackend();
      const base = mkdtempSync(join(tmpdir(), 'gpt-proxy-nginx-stream-'));
      registerTempDir(base);
      chmodSync(base, 0o755);
      writeSelfSignedCert(join(base, 'certs'));
      edge = await startNginx({
        appUpstream: backend.upstream,
        certDir: join(base, 'certs'),
        webroot: base,
        watchCerts: false,
      });
    });

    after(async () => {
      await edge?.stop();
      await backend?.stop();
    });

    test('HTTP/1.1: the first event arrives while the upstream holds the rest back', async () => {
      const latch = backend.holdStreams();
      const stream = await post({ 'accept-encoding': 'gzip, br' });
      try {
        assert.equal(stream.status, 200);
        assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
        assert.equal(stream.headers['content-encoding'], undefined, 'event streams are never compressed');
        await latch.waitForHeld(1);
        await waitFor(() => events(stream.text()).length >= 1, { timeoutMs: 5000, what: 'the first event' });
        await sleep(300);
        assert.equal(events(stream.text()).length, 1, 'only what the upstream sent so far');
        assert.ok(!stream.text().includes('[DONE]'));
        latch.release();
        assert.equal(await stream.ended, true);
        assert.ok(events(stream.text()).length > 2);
        assert.match(stream.text(), /data: \[DONE\]\n\n$/);
      } finally {
        latch.release();
        stream.close();
      }
    });

    test('HTTP/1.1: spaced events reach the client one by one', async () => {
      backend.setDeltaDelay(150);
      try {
        const stream = await post();
        const seenCounts = new Set<number>();
        while (!stream.text().includes('[DONE]')) {
          seenCounts.add(events(stream.text()).length);
          await sleep(20);
          if (seenCounts.size > 200) break;
        }
        await stream.ended;
        assert.ok(seenCounts.size >= 4, `events arrived in ${seenCounts.size} steps, not as one block`);
      } finally {
        backend.setDeltaDelay(0);
      }
    });

    test('HTTP/2: the first event arrives while the upstream holds the rest back', async () => {
      const latch = backend.holdStreams();
      const session = http2Connect(edge.httpsUrl, { rejectUnauthorized: false });
      try {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/v1/chat/completions',
          'content-type': 'application/json',
          authorization: backend.authorization,
        });
        let text = '';
        let status = 0;
        stream.on('response', (headers) => {
          status = Number(headers[':status']);
        });
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          text += chunk;
        });
        const ended = new Promise<void>((resolve, reject) => {
          stream.on('end', resolve);
          stream.on('error', reject);
        });
        stream.end(CHAT);
        await latch.waitForHeld(1);
        await waitFor(() => events(text).length >= 1, { timeoutMs: 5000, what: 'the first event over h2' });
        assert.equal(status, 200);
        assert.ok(!text.includes('[DONE]'));
        latch.release();
        await ended;
        assert.match(text, /data: \[DONE\]\n\n$/);
      } finally {
        latch.release();
        session.close();
      }
    });

    if (name === 'the real app') {
      test("the app's X-Accel-Buffering: no reaches the client, for a buffering proxy in front", async () => {
        const stream = await post();
        await stream.ended;
        assert.equal(stream.status, 200);
        assert.equal(stream.headers['x-accel-buffering'], 'no');
      });

      test("the app adopts nginx's X-Request-Id: response, app log and access log agree", async () => {
        const stream = await post();
        await stream.ended;
        const id = String(stream.headers['x-request-id']);
        assert.match(id, /^[0-9a-f]{32}$/, 'the id nginx generated ($request_id)');
        await waitFor(() => edge.accessLog().some((e) => e.request_id === id), {
          timeoutMs: 5000,
          what: 'the access log entry with that id',
        });
        await waitFor(() => backend.log?.().includes(id), { timeoutMs: 5000, what: 'the id in the app log' });
      });
    }
  });
}
