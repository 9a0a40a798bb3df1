// GET /v1/models and the model catalog behind it, against the fake upstream: the upstream call
// shared by concurrent askers, answers that are not a model list, and the listing kept coming in
// the background for the metrics' model label.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServiceOverrides } from '../../app/src/services.ts';
import { ModelCatalog } from '../../app/src/upstream/model-catalog.ts';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

const KEY = 'sk-catalog-key';

describe('model catalog', () => {
  let stack: TestStack;
  let headers: Record<string, string>;
  before(async () => {
    stack = await startStack({ upstreamKeys: [KEY] });
    headers = { authorization: `Bearer ${(await stack.issueKey()).key}` };
  });
  after(async () => {
    await stack?.destroy();
  });

  /**
   * The app with no model list yet: its start-up listing fails. Its background listing tries again
   * after a minute unless told otherwise, well after the upstream calls a test scripts.
   */
  async function coldApp(overrides: ServiceOverrides = { modelRetryMs: 60_000 }): Promise<InProcessApp> {
    stack.fake.setKeyBehavior(KEY, 'server_error', { times: 1 });
    const app = await startAppInProcess(stack.env, overrides);
    stack.fake.clearKeyBehaviors();
    stack.fake.clearRequests();
    return app;
  }

  const ids = async (res: Response) => ((await res.json()) as { data: Array<{ id: string }> }).data;

  it('a client leaving does not fail the others waiting on the same upstream call', async () => {
    const app = await coldApp();
    try {
      stack.fake.setKeyBehavior(KEY, { kind: 'slow_first_byte', ms: 1_500 }, { times: 1 });
      const first = new AbortController();
      const a = fetch(`${app.url}/v1/models`, { headers, signal: first.signal }).catch(() => 'aborted');
      await waitFor(() => stack.fake.requests.some((r) => r.endpoint === 'models'), {
        what: 'the upstream listing',
      });
      const b = fetch(`${app.url}/v1/models`, { headers });
      await new Promise((r) => setTimeout(r, 300)); // b is waiting on the same upstream call
      first.abort();
      assert.equal(await a, 'aborted');
      const res = await b;
      assert.equal(res.status, 200);
      assert.ok((await ids(res)).length > 0);
      assert.equal(stack.fake.requests.filter((r) => r.endpoint === 'models').length, 1, 'one shared call');
      assert.deepEqual(
        app.logs().filter((l) => l.level === 'error' || l.level === 'fatal'),
        [],
      );
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
    }
  });

  it('a 4xx answer is a failed listing, not an empty list kept for a minute', async () => {
    const app = await coldApp();
    try {
      stack.fake.setKeyBehavior(KEY, 'content_filter', { times: 1 }); // 400 from GET /models
      const failed = await fetch(`${app.url}/v1/models`, { headers });
      assert.equal(failed.status, 502, await failed.text());
      const res = await fetch(`${app.url}/v1/models`, { headers });
      assert.equal(res.status, 200);
      assert.ok((await ids(res)).length > 0, 'the real list once the upstream gives it');
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
    }
  });

  it('a 4xx answer keeps the last good list', async () => {
    const app = await startAppInProcess(stack.env);
    try {
      const { pool, forwarder } = app.services;
      const catalog = new ModelCatalog({ pool, forwarder, ttlMs: 0 }); // asks the upstream every time
      const good = await catalog.list(AbortSignal.timeout(5_000));
      assert.ok(good.length > 0);
      stack.fake.setKeyBehavior(KEY, 'content_filter', { times: 1 });
      assert.deepEqual(await catalog.list(AbortSignal.timeout(5_000)), good);
      assert.equal(stack.fake.requests.at(-1)?.status, 400, 'the upstream was asked and said 400');
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
    }
  });

  it('a failed start-up listing is tried again, and the metrics then name the model', async () => {
    const app = await coldApp({ modelRetryMs: 200 });
    try {
      assert.equal(app.services.models.label('gpt-4o'), 'other', 'nothing learnt yet');
      await waitFor(() => app.services.models.label('gpt-4o') === 'gpt-4o', {
        what: 'the listing tried again in the background',
      });
      const res = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      app.settle();
      assert.match(
        await app.registry.metrics(),
        /gpt_proxy_requests_total\{route="\/v1\/chat\/completions",status="200",model="gpt-4o"\} 1/,
      );
    } finally {
      await app.stop();
    }
  });

  it('a listing that outlasts the asker who started it still teaches the metrics label', async () => {
    const app = await startAppInProcess(stack.env);
    try {
      const { pool, forwarder } = app.services;
      const catalog = new ModelCatalog({ pool, forwarder });
      stack.fake.setKeyBehavior(KEY, { kind: 'slow_first_byte', ms: 1_000 }, { times: 1 });
      // As the start-up's asker once did, after 10 s (a listing may take 30): it stops waiting.
      await assert.rejects(catalog.list(AbortSignal.timeout(100)));
      assert.equal(catalog.label('gpt-4o'), 'other');
      await waitFor(() => catalog.label('gpt-4o') === 'gpt-4o', {
        what: 'the label learnt from the listing',
      });
    } finally {
      await app.stop();
      stack.fake.clearKeyBehaviors();
    }
  });

  it('once it has a list, the background listing comes again (for models released since) until closed', async () => {
    const app = await startAppInProcess(stack.env);
    const { pool, forwarder } = app.services;
    const catalog = new ModelCatalog({ pool, forwarder, ttlMs: 0, refreshMs: 200 });
    const listings = () => stack.fake.requests.filter((r) => r.endpoint === 'models').length;
    try {
      stack.fake.clearRequests();
      catalog.start();
      await waitFor(() => listings() >= 3, { what: 'three listings' });
      catalog.close();
      const closedAt = listings();
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(listings(), closedAt, 'none after close');
    } finally {
      catalog.close();
      await app.stop();
    }
  });
});
