import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ApiError } from '../../app/src/errors.ts';
import type { Outcome } from '../../app/src/upstream/classify.ts';
import { Forwarder, type ForwarderTimeouts } from '../../app/src/upstream/forwarder.ts';
import type { Candidate, UpstreamPool } from '../../app/src/upstream/pool.ts';

// A real upstream on loopback: key sk-500 gets a 500 at once, sk-slow-500 a 500 after 1.7 s, sk-ok
// a 200, sk-no-model OpenAI's 403 for a project that may not use the model, every other key an
// answer that never comes. The pool offers the keys in the order given
// (ids 1, 2, 3) and records what it is told about them.
let upstream: Server;
let origin: string;
let seen: string[] = [];

before(async () => {
  upstream = createServer((req, res) => {
    const key = String(req.headers.authorization).slice('Bearer '.length);
    seen.push(key);
    req.resume();
    const fail = () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{}}');
    if (key === 'sk-500') fail();
    else if (key === 'sk-slow-500') setTimeout(fail, 1_700);
    else if (key === 'sk-ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    else if (key === 'sk-no-model') {
      const refusal = {
        error: { message: 'no access to model', type: 'invalid_request_error', code: 'model_not_found' },
      };
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify(refusal));
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
after(async () => {
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

/** Forwards one JSON request over keys with these secrets; what the upstream saw and the pool heard. */
async function forward(secrets: string[], timeouts: Partial<ForwarderTimeouts>) {
  seen = [];
  const reports: Array<{ id: number; kind: Outcome['kind'] }> = [];
  const candidates: Candidate[] = secrets.map((secret, i) => ({
    key: { id: i + 1, provider: 'openai', secret, endpoint: null, deployments: null },
    target: { origin, path: '/v1/chat/completions', headers: { authorization: `Bearer ${secret}` } },
  }));
  const pool = {
    select: () => ({ ok: true, candidates }),
    report: (id: number, outcome: Outcome) => reports.push({ id, kind: outcome.kind }),
  } as unknown as UpstreamPool;
  const forwarder = new Forwarder({ pool, timeouts });
  try {
    const answer = await forwarder.forward({
      operation: 'chat/completions',
      model: 'gpt-4o',
      body: Buffer.from('{}'),
      method: 'POST',
      accept: 'application/json',
      buffer: true,
      signal: new AbortController().signal,
    });
    return { status: answer.status, seen, reports };
  } catch (err) {
    return { error: (err as ApiError).code, seen, reports };
  } finally {
    upstream.closeAllConnections();
    await forwarder.close();
  }
}

describe('Forwarder: failover within the total deadline', () => {
  it('an attempt cut off by the total deadline is not held against its key', async () => {
    // Key 1 fails at once (its fault); key 2 is still thinking when the budget runs out.
    const r = await forward(['sk-500', 'sk-2', 'sk-3'], { headersMs: 10_000, totalMs: 500 });
    assert.equal(r.error, 'upstream_timeout');
    assert.deepEqual(r.seen, ['sk-500', 'sk-2']);
    assert.deepEqual(r.reports, [{ id: 1, kind: 'upstream_failure' }]);
  });

  it('no failover attempt is started with less than a fifth of the budget left', async () => {
    // Key 1 fails after 1.7 s of 2 s: key 2 would only be cut off (and bill for it).
    const r = await forward(['sk-slow-500', 'sk-2'], { headersMs: 10_000, totalMs: 2_000 });
    assert.equal(r.error, 'upstream_error');
    assert.deepEqual(r.seen, ['sk-slow-500']);
    assert.deepEqual(r.reports, [{ id: 1, kind: 'upstream_failure' }]);
  });

  it('a quick failure still fails over', async () => {
    const r = await forward(['sk-500', 'sk-ok'], { headersMs: 600, totalMs: 700 });
    assert.equal(r.status, 200);
    assert.deepEqual(r.seen, ['sk-500', 'sk-ok']);
    assert.deepEqual(r.reports, [
      { id: 1, kind: 'upstream_failure' },
      { id: 2, kind: 'success' },
    ]);
  });

  it("a key's refusal of the model is relayed only when every attempt refuses; otherwise the others' failure counts", async () => {
    const timeouts = { headersMs: 600, totalMs: 700 };
    const refused = await forward(['sk-no-model', 'sk-no-model'], timeouts);
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.reports, [
      { id: 1, kind: 'model_refused' },
      { id: 2, kind: 'model_refused' },
    ]);
    for (const secrets of [
      ['sk-no-model', 'sk-500'],
      ['sk-500', 'sk-no-model'],
    ]) {
      const r = await forward(secrets, timeouts);
      assert.equal(r.error, 'upstream_error', secrets.join());
      assert.deepEqual(r.seen, secrets);
    }
  });
});
