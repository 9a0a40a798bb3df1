import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { AzureOpenAI } from 'openai';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

describe('proxy: every route through the official SDK', () => {
  let stack: TestStack;
  let app: InProcessApp;
  let client: OpenAI;
  let key: string;

  before(async () => {
    stack = await startStack({ upstreamKeys: ['sk-upstream-happy-1'] });
    app = await startAppInProcess(stack.env);
    key = (await stack.issueKey()).key;
    client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await app?.stop();
    await stack?.destroy();
  });

  it('chat completions, plain and streamed', async () => {
    const plain = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(plain.object, 'chat.completion');
    assert.equal(plain.choices[0]?.message.content, 'Hello from the fake upstream.');
    assert.ok(plain.usage && plain.usage.total_tokens > 0);

    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello from the fake upstream.');
  });

  it('legacy completions, plain and streamed', async () => {
    const plain = await client.completions.create({
      model: 'gpt-3.5-turbo-instruct',
      prompt: 'Say hi',
      max_tokens: 50,
    });
    assert.equal(plain.object, 'text_completion');
    assert.equal(plain.choices[0]?.text, 'Hello from the fake upstream.');
    const stream = await client.completions.create({
      model: 'gpt-3.5-turbo-instruct',
      prompt: 'Say hi',
      max_tokens: 50,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, 'Hello from the fake upstream.');
  });

  it('embeddings, float and base64 (the SDK default)', async () => {
    const floats = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['a', 'b'],
      encoding_format: 'float',
    });
    assert.equal(floats.data.length, 2);
    const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    assert.deepEqual(
      b64.data.map((d) => d.embedding.length),
      floats.data.map((d) => d.embedding.length),
    );
    assert.ok(Math.abs((b64.data[0]?.embedding[0] ?? 0) - (floats.data[0]?.embedding[0] ?? 1)) < 1e-6);
  });

  it('responses, plain and streamed (named events, no [DONE])', async () => {
    const plain = await client.responses.create({ model: 'gpt-4o', input: 'hi' });
    assert.equal(plain.output_text, 'Hello from the fake upstream.');
    const stream = await client.responses.create({ model: 'gpt-4o', input: 'hi', stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.includes('response.output_text.delta'));
  });

  it('lists models', async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(ids.includes('gpt-4o') && ids.includes('text-embedding-3-small'));
  });

  it('Azure-style deployment routes with an Azure SDK client (api-key header, api-version query)', async () => {
    const azure = new AzureOpenAI({
      apiKey: key,
      endpoint: app.url,
      apiVersion: '2024-10-21',
      deployment: 'gpt-4o',
      maxRetries: 0,
    });
    const chat = await azure.chat.completions.create({
      model: '',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(chat.choices[0]?.message.content, 'Hello from the fake upstream.');
    const stream = await azure.chat.completions.create({
      model: '',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Hello from the fake upstream.');
    const emb = await new AzureOpenAI({
      apiKey: key,
      endpoint: app.url,
      apiVersion: '2024-10-21',
      deployment: 'text-embedding-3-small',
      maxRetries: 0,
    }).embeddings.create({ model: '', input: 'x', encoding_format: 'float' });
    assert.equal(emb.data.length, 1);
    // The request reached the OpenAI upstream with the deployment as the model.
    const last = stack.fake.requests.at(-1);
    assert.equal(last?.body?.model, 'text-embedding-3-small');
    assert.equal(last?.path, '/v1/embeddings');
  });

  it('passes the body through untouched and the upstream key, never the client key, upstream', async () => {
    stack.fake.clearRequests();
    const body =
      '{"model":"gpt-4o",  "messages":[{"role":"user","content":"exact bytes ✓"}],"temperature":0.25,"x_custom":{"k":[1,2]}}';
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 200);
    const seen = stack.fake.requests[0];
    assert.equal(seen?.rawBody, body);
    assert.equal(seen?.key, 'sk-upstream-happy-1');
    assert.ok(!JSON.stringify(seen?.headers).includes(key));
  });

  it('sets x-request-id (adopting nginx’s) and strips the upstream’s account and rate-limit headers', async () => {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'x-request-id': '0123456789abcdef0123456789abcdef',
      },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), '0123456789abcdef0123456789abcdef');
    for (const name of [...res.headers.keys()]) {
      assert.ok(!['openai-organization', 'openai-project', 'set-cookie'].includes(name), `${name} leaked`);
    }
    // The x-ratelimit-* headers are the proxy's own (this key's default 60/min), not the upstream's.
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '60');
    assert.equal(res.headers.get('x-ratelimit-limit-tokens'), null);
    assert.match(res.headers.get('x-upstream-request-id') ?? '', /^req_/);
    const logged = app.logs().find((l) => l.reqId === '0123456789abcdef0123456789abcdef');
    assert.equal(logged?.status, 200);
    // A made-up id that is not tame is replaced, not adopted.
    const other = await fetch(`${app.url}/health/live`, {
      headers: { 'x-request-id': 'bad id\twith spaces' },
    });
    assert.match(other.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
  });

  it('serves an OpenAI route by any spelling the router accepts, under the one route label; other methods are unknown_url', async () => {
    // The exact paths take a fast path ahead of the router; a trailing slash or other letter case
    // still reaches the router, as before. Both must land on the same handler and label.
    const post = (path: string) =>
      fetch(`${app.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      });
    const served = [];
    for (const path of ['/v1/chat/completions', '/v1/chat/completions/', '/V1/Chat/Completions']) {
      const res = await post(path);
      assert.equal(res.status, 200, path);
      assert.equal(((await res.json()) as { object: string }).object, 'chat.completion', path);
      served.push(res.headers.get('x-request-id'));
    }
    app.settle();
    await app.services.usage.flush();
    const { rows } = await stack.db.query(
      'SELECT request_id, route FROM usage_logs WHERE request_id = ANY($1)',
      [served],
    );
    assert.deepEqual(
      rows.map((r) => r.route),
      ['/v1/chat/completions', '/v1/chat/completions', '/v1/chat/completions'],
    );
    const metrics = await app.registry.metrics();
    assert.doesNotMatch(metrics, /route="(\/v1\/chat\/completions\/|\/V1[^"]*|unmatched)"/);

    const get = await fetch(`${app.url}/v1/chat/completions`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(get.status, 404);
    assert.equal(((await get.json()) as { error: { code: string } }).error.code, 'unknown_url');
  });

  it('health reports both services', async () => {
    const res = await fetch(`${app.url}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: 'healthy',
      services: { database: 'healthy', redis: 'healthy' },
    });
    assert.equal((await fetch(`${app.url}/health/live`)).status, 200);
  });
});
