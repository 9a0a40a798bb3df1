// GET /v1/models and the model catalog behind it, against the fake upstream: the upstream call
// shared by concurrent askers, and answers that are not a model list.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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

  /** The app with no model list yet: its start-up listing fails. */
  async function coldApp(): Promise<InProcessApp> {
    stack.fake.setKeyBehavior(KEY, 'server_error', { times: 1 });
    const app = await startAppInProcess(stack.env);
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
});
