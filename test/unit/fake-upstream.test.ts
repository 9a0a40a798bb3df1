import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI, {
  APIConnectionError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  AzureOpenAI,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai';
import {
  DEFAULT_ANSWER,
  embedVector,
  type FakeUpstream,
  splitAnswer,
  startFakeUpstream,
} from '../fake-upstream/index.ts';

const KEY = 'sk-proj-unit0000000000000000000000abcd';
const PROMPT = 'Say hello to the fake upstream please';
const messages = [{ role: 'user' as const, content: PROMPT }];

describe('fake upstream', () => {
  let fake: FakeUpstream;
  let client: OpenAI;
  const sdk = (apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: fake.openaiBaseUrl, maxRetries: 0 });

  before(async () => {
    fake = await startFakeUpstream();
    client = sdk(KEY);
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.clearRequests();
    fake.clearKeyBehaviors();
  });

  describe('OpenAI surface via the SDK', () => {
    it('chat non-stream: body, usage, headers and the request log', async () => {
      const { data, response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages, max_tokens: 100 })
        .withResponse();
      assert.match(data.id, /^chatcmpl-/);
      assert.equal(data.object, 'chat.completion');
      assert.equal(data.model, 'gpt-4o-mini');
      assert.equal(data.choices[0]?.message.content, DEFAULT_ANSWER);
      assert.equal(data.choices[0]?.finish_reason, 'stop');
      const completion = splitAnswer(DEFAULT_ANSWER).length;
      assert.deepEqual(
        [data.usage?.prompt_tokens, data.usage?.completion_tokens, data.usage?.total_tokens],
        [Math.ceil(PROMPT.length / 4), completion, Math.ceil(PROMPT.length / 4) + completion],
      );
      assert.match(response.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/);
      assert.equal(response.headers.get('openai-version'), '2020-10-01');
      assert.ok(response.headers.get('openai-organization'));
      assert.ok(response.headers.get('x-ratelimit-remaining-tokens'));
      assert.match(response.headers.get('set-cookie') ?? '', /__cf_bm=.*HttpOnly; Secure/);
      const [rec] = fake.requests;
      assert.equal(rec?.method, 'POST');
      assert.equal(rec?.path, '/v1/chat/completions');
      assert.equal(rec?.key, KEY);
      assert.equal(rec?.headers.authorization, `Bearer ${KEY}`);
      assert.equal(rec?.body?.model, 'gpt-4o-mini');
      assert.equal(rec?.status, 200);
      assert.equal(await rec?.closed, 'finished');
    });

    it('chat stream without include_usage has no usage chunk', async () => {
      const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
      assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), DEFAULT_ANSWER);
      assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
      assert.ok(chunks.every((c) => c.usage == null && c.object === 'chat.completion.chunk'));
      assert.equal(chunks.length, splitAnswer(DEFAULT_ANSWER).length + 2);
    });

    it('chat stream with include_usage ends with a choices:[] usage chunk', async () => {
      const stream = await client.chat.completions.create({
        model: 'gpt-4o',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const last = chunks.at(-1);
      assert.deepEqual(last?.choices, []);
      const deltas = chunks.filter((c) => (c.choices[0]?.delta.content ?? '') !== '').length;
      assert.equal(last?.usage?.completion_tokens, deltas);
      assert.equal(last?.usage?.total_tokens, (last?.usage?.prompt_tokens ?? 0) + deltas);
    });

    it('legacy completions, stream and not; max_tokens truncates with finish_reason length', async () => {
      const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' });
      assert.equal(c.object, 'text_completion');
      assert.equal(c.choices[0]?.text, DEFAULT_ANSWER);
      const cut = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'x',
        max_tokens: 2,
      });
      assert.equal(cut.choices[0]?.finish_reason, 'length');
      assert.equal(cut.usage?.completion_tokens, 2);
      const stream = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'x',
        stream: true,
      });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
      assert.equal(text, DEFAULT_ANSWER);
    });

    it('embeddings: float and base64 decode to the same deterministic vectors', async () => {
      const floats = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: ['alpha', 'beta'],
        encoding_format: 'float',
      });
      assert.equal(floats.data.length, 2);
      assert.equal(floats.data[0]?.embedding.length, 1536);
      assert.equal(floats.usage.prompt_tokens, 3); // ceil(5/4) + ceil(4/4)
      // The SDK asks for base64 by default and decodes it.
      const decoded = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: ['alpha', 'beta'],
      });
      assert.equal(fake.requests.at(-1)?.body?.encoding_format, 'base64');
      assert.deepEqual(decoded.data[1]?.embedding, floats.data[1]?.embedding);
      const raw = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: 'alpha',
        encoding_format: 'base64',
        dimensions: 4,
      });
      const bytes = Buffer.from(raw.data[0]?.embedding ?? '', 'base64');
      assert.equal(bytes.length, 16);
      assert.deepEqual(
        [0, 4, 8, 12].map((o) => bytes.readFloatLE(o)),
        embedVector('alpha', 4),
      );
    });

    it('responses non-stream and stream', async () => {
      const r = await client.responses.create({
        model: 'gpt-4.1',
        input: 'Hi there',
        instructions: 'Be brief',
      });
      assert.match(r.id, /^resp_/);
      assert.equal(r.status, 'completed');
      assert.equal(r.output_text, DEFAULT_ANSWER);
      assert.equal(r.usage?.output_tokens, splitAnswer(DEFAULT_ANSWER).length);
      assert.equal(r.instructions, 'Be brief');

      const stream = await client.responses.create({ model: 'gpt-4.1', input: 'Hi', stream: true });
      const types: string[] = [];
      let text = '';
      let seq = -1;
      for await (const event of stream) {
        types.push(event.type);
        assert.equal(event.sequence_number, seq + 1);
        seq = event.sequence_number;
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.completed') assert.equal(event.response.output_text ?? text, text);
      }
      const deltas = splitAnswer(DEFAULT_ANSWER).length;
      assert.deepEqual(types, [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        ...Array<string>(deltas).fill('response.output_text.delta'),
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      assert.equal(text, DEFAULT_ANSWER);
    });

    it('models list and retrieve', async () => {
      const ids: string[] = [];
      for await (const m of client.models.list()) ids.push(m.id);
      assert.ok(ids.includes('gpt-4o-mini'));
      assert.equal((await client.models.retrieve('gpt-4o')).object, 'model');
      await assert.rejects(client.models.retrieve('nope'), NotFoundError);
    });
  });

  describe('errors through the SDK', () => {
    it('401 invalid_api_key with a masked key', async () => {
      fake.setKeyBehavior('sk-bad-key-000000000000wxyz', 'invalid_key');
      const err = await sdk('sk-bad-key-000000000000wxyz')
        .chat.completions.create({ model: 'gpt-4o', messages })
        .catch((e: unknown) => e);
      assert.ok(err instanceof AuthenticationError);
      assert.equal(err.status, 401);
      assert.equal(err.code, 'invalid_api_key');
      assert.match(err.message, /Incorrect API key provided: sk-bad-k\*+wxyz\. You can find your API key at/);
      assert.doesNotMatch(err.message, /000000000000/);
    });

    it('429 rate limit (requests, tokens) and insufficient_quota', async () => {
      fake.setKeyBehavior('k-rl', { kind: 'rate_limited', retryAfterSeconds: 7 });
      const err = await sdk('k-rl')
        .chat.completions.create({ model: 'gpt-4o', messages })
        .catch((e: unknown) => e);
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.equal(err.type, 'requests');
      assert.equal(err.headers.get('retry-after'), '7');
      assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
      fake.setKeyBehavior('k-rl', { kind: 'rate_limited', limitType: 'tokens' });
      await assert.rejects(sdk('k-rl').chat.completions.create({ model: 'gpt-4o', messages }), {
        type: 'tokens',
      });
      // Some real 429s come without retry-after: the x-ratelimit-* headers are all there is.
      fake.setKeyBehavior('k-rl', { kind: 'rate_limited', reset: '120ms', retryAfter: false });
      const bare = await sdk('k-rl')
        .chat.completions.create({ model: 'gpt-4o', messages })
        .catch((e: unknown) => e);
      assert.ok(bare instanceof RateLimitError);
      assert.equal(bare.headers.get('retry-after'), null);
      assert.equal(bare.headers.get('x-ratelimit-remaining-requests'), '0');
      assert.equal(bare.headers.get('x-ratelimit-reset-requests'), '120ms');
      assert.equal(bare.headers.get('x-ratelimit-reset-tokens'), '800ms');
      assert.match(bare.message, /Please try again in 120ms\./);
      fake.setKeyBehavior('k-quota', 'insufficient_quota');
      await assert.rejects(sdk('k-quota').chat.completions.create({ model: 'gpt-4o', messages }), {
        status: 429,
        code: 'insufficient_quota',
        type: 'insufficient_quota',
      });
    });

    it('behaviour with times reverts to the default; 500, 503, 403', async () => {
      fake.setKeyBehavior('k-once', 'server_error', { times: 1 });
      await assert.rejects(
        sdk('k-once').chat.completions.create({ model: 'gpt-4o', messages }),
        InternalServerError,
      );
      assert.ok(await sdk('k-once').chat.completions.create({ model: 'gpt-4o', messages }));
      fake.setKeyBehavior('k-503', 'overloaded');
      await assert.rejects(sdk('k-503').chat.completions.create({ model: 'gpt-4o', messages }), {
        status: 503,
        message: '503 The server is overloaded or not ready yet.',
      });
      fake.setKeyBehavior('k-403', 'forbidden');
      await assert.rejects(
        sdk('k-403').chat.completions.create({ model: 'gpt-4o', messages }),
        PermissionDeniedError,
      );
    });

    it('validation: missing messages, unknown model, bad JSON, missing key', async () => {
      const noMessages = { model: 'gpt-4o' } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
      await assert.rejects(client.chat.completions.create(noMessages), (e: unknown) => {
        assert.ok(e instanceof BadRequestError);
        assert.equal(e.param, 'messages');
        assert.equal(e.code, 'missing_required_parameter');
        return true;
      });
      await assert.rejects(client.chat.completions.create({ model: 'gpt-9', messages }), {
        status: 404,
        code: 'model_not_found',
      });
      const bad = await fetch(`${fake.openaiBaseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: '{not json',
      });
      assert.equal(bad.status, 400);
      assert.match(
        ((await bad.json()) as { error: { message: string } }).error.message,
        /could not parse the JSON/,
      );
      const anon = await fetch(`${fake.openaiBaseUrl}/models`);
      assert.equal(anon.status, 401);
      assert.match(await anon.text(), /You didn't provide an API key/);
    });

    it('error_mid_stream: the error reported inside a 200 stream, as the SDK reads it', async () => {
      fake.setKeyBehavior('k-err', { kind: 'error_mid_stream', afterEvents: 2 });
      const chat = await sdk('k-err').chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      let chunks = 0;
      await assert.rejects(
        async () => {
          for await (const _ of chat) chunks++;
        },
        (e: unknown) => e instanceof APIError && /The server had an error while processing/.test(e.message),
      );
      assert.equal(chunks, 2);
      const raw = await fetch(`${fake.openaiBaseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer k-err', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages, stream: true }),
      });
      assert.equal(raw.status, 200);
      const events = (await raw.text()).trim().split('\n\n');
      assert.equal(events.length, 3);
      assert.deepEqual(JSON.parse(events[2]?.slice('data: '.length) ?? '{}'), {
        error: {
          message: 'The server had an error while processing your request. Sorry about that!',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
      assert.equal(fake.requests.at(-1)?.outcome, 'finished', 'ended normally, no [DONE]');

      const responses = await sdk('k-err').responses.create({ model: 'gpt-4o', input: 'hi', stream: true });
      const types: string[] = [];
      await assert.rejects(async () => {
        for await (const event of responses) types.push(event.type);
      }, APIError);
      assert.deepEqual(types, ['response.created', 'response.in_progress']);

      fake.setKeyBehavior('k-err', { kind: 'error_mid_stream', afterEvents: 3, as: 'failed' });
      const failed = await sdk('k-err').responses.create({ model: 'gpt-4o', input: 'hi', stream: true });
      const seen: Array<{ type: string; sequence_number: number }> = [];
      for await (const event of failed) seen.push(event);
      assert.deepEqual(
        seen.map((e) => [e.type, e.sequence_number]),
        [
          ['response.created', 0],
          ['response.in_progress', 1],
          ['response.output_item.added', 2],
          ['response.failed', 3],
        ],
      );
      const last = seen.at(-1) as { response?: { status: string; error: { code: string } } };
      assert.equal(last.response?.status, 'failed');
      assert.equal(last.response?.error.code, 'server_error');

      const plain = await sdk('k-err').chat.completions.create({ model: 'gpt-4o', messages });
      assert.equal(plain.choices[0]?.message.content, DEFAULT_ANSWER, 'not a stream: answered normally');
    });

    it('reset and fail_mid_stream surface as connection errors', async () => {
      fake.setKeyBehavior('k-reset', 'reset');
      await assert.rejects(
        sdk('k-reset').chat.completions.create({ model: 'gpt-4o', messages }),
        APIConnectionError,
      );
      fake.setKeyBehavior('k-mid', { kind: 'fail_mid_stream', afterEvents: 3 });
      const stream = await sdk('k-mid').chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      const seen: string[] = [];
      await assert.rejects(async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      });
      assert.equal(seen.length, 3);
      assert.equal(fake.requests.at(-1)?.outcome, 'destroyed');
    });
  });

  describe('Azure surfaces', () => {
    const azureFetch = (path: string, body: object, key = 'azure-key'): Promise<Response> =>
      fetch(`${fake.azureEndpoint}${path}`, {
        method: 'POST',
        headers: { 'api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    it('deployments route: deployment model, headers, api-version and deployment errors', async () => {
      const ok = await azureFetch('/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21', {
        messages,
      });
      assert.equal(ok.status, 200);
      assert.ok(ok.headers.get('apim-request-id'));
      assert.ok(ok.headers.get('x-ms-region'));
      const body = (await ok.json()) as { model: string; prompt_filter_results: unknown[] };
      assert.equal(body.model, 'gpt-4o-2024-08-06');
      assert.equal(body.prompt_filter_results.length, 1);
      assert.equal(fake.requests[0]?.key, 'azure-key');
      assert.equal(fake.requests[0]?.deployment, 'gpt-4o');

      const noVersion = await azureFetch('/openai/deployments/gpt-4o/chat/completions', { messages });
      assert.equal(noVersion.status, 404);
      assert.deepEqual(await noVersion.json(), { error: { code: '404', message: 'Resource not found' } });
      const missing = await azureFetch('/openai/deployments/nope/chat/completions?api-version=2024-10-21', {
        messages,
      });
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'DeploymentNotFound');

      // stream_options is unknown to dated versions before 2024-09-01-preview.
      const streamed = { messages, stream: true, stream_options: { include_usage: true } };
      for (const [version, status] of [
        ['2024-06-01', 400],
        ['2024-08-01-preview', 400],
        ['2024-09-01-preview', 200],
        ['2024-10-21', 200],
      ] as const) {
        const r = await azureFetch(
          `/openai/deployments/gpt-4o/chat/completions?api-version=${version}`,
          streamed,
        );
        assert.equal(r.status, status, version);
        const text = await r.text();
        if (status === 400) assert.match(text, /Unrecognized request argument supplied: stream_options/);
      }

      fake.setKeyBehavior('azure-bad', 'invalid_key');
      const denied = await azureFetch(
        '/openai/deployments/gpt-4o/embeddings?api-version=2024-10-21',
        {},
        'azure-bad',
      );
      assert.equal(denied.status, 401);
      assert.match(((await denied.json()) as { error: { message: string } }).error.message, /^Access denied/);
    });

    it('AzureOpenAI SDK: 429 with retry-after-ms and a content filter 400', async () => {
      fake.setKeyBehavior('az-rl', { kind: 'rate_limited', retryAfterSeconds: 6 });
      const azure = (apiKey: string): AzureOpenAI =>
        new AzureOpenAI({ endpoint: fake.azureEndpoint, apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
      const err = await azure('az-rl')
        .chat.completions.create({ model: 'gpt-4o-mini', messages })
        .catch((e: unknown) => e);
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.headers.get('retry-after-ms'), '6000');
      assert.match(err.message, /ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21/);
      fake.setKeyBehavior('az-rl', { kind: 'rate_limited', retryAfter: false });
      const bare = await azure('az-rl')
        .chat.completions.create({ model: 'gpt-4o-mini', messages })
        .catch((e: unknown) => e);
      assert.ok(bare instanceof RateLimitError);
      assert.deepEqual([bare.headers.get('retry-after'), bare.headers.get('retry-after-ms')], [null, null]);
      fake.setKeyBehavior('az-cf', 'content_filter');
      await assert.rejects(azure('az-cf').chat.completions.create({ model: 'gpt-4o-mini', messages }), {
        status: 400,
        code: 'content_filter',
      });
      const ok = await azure('az-ok').chat.completions.create({ model: 'gpt-4o-mini', messages });
      assert.equal(ok.model, 'gpt-4o-mini-2024-07-18');
      assert.equal(fake.requests.at(-1)?.path, '/openai/deployments/gpt-4o-mini/chat/completions');
    });

    it("dated surface's model list (Models - List): Azure's ModelList, api-key auth, key behaviours", async () => {
      const azure = (apiKey: string): AzureOpenAI =>
        new AzureOpenAI({ endpoint: fake.azureEndpoint, apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
      const page = await azure('az-models').models.list();
      assert.equal(fake.requests.at(-1)?.path, '/openai/models');
      assert.equal(fake.requests.at(-1)?.query['api-version'], '2024-10-21');
      assert.equal(fake.requests.at(-1)?.key, 'az-models');
      const ids = page.data.map((m) => m.id);
      assert.ok(ids.includes('gpt-4o-2024-08-06') && ids.includes('text-embedding-3-small'), ids.join());
      const raw = await fetch(`${fake.azureEndpoint}/openai/models?api-version=2024-10-21`, {
        headers: { 'api-key': 'az-models' },
      });
      const list = (await raw.json()) as { object: string; data: Array<Record<string, unknown>> };
      assert.equal(list.object, 'list');
      const { created_at, deprecation, ...embedding } =
        list.data.find((m) => m.id === 'text-embedding-3-small') ?? {};
      assert.equal(typeof created_at, 'number');
      assert.equal(typeof (deprecation as { inference?: unknown }).inference, 'number');
      assert.deepEqual(embedding, {
        status: 'succeeded',
        capabilities: {
          fine_tune: false,
          inference: true,
          completion: false,
          chat_completion: false,
          embeddings: true,
        },
        lifecycle_status: 'generally-available',
        id: 'text-embedding-3-small',
        object: 'model',
      });
      const chat = list.data.find((m) => m.id === 'gpt-4o-2024-08-06');
      assert.equal((chat?.capabilities as Record<string, boolean> | undefined)?.chat_completion, true);

      fake.setKeyBehavior('az-bad', 'invalid_key');
      await assert.rejects(azure('az-bad').models.list(), (e: unknown) => {
        assert.ok(e instanceof AuthenticationError);
        assert.match(e.message, /Access denied due to invalid subscription key/);
        return true;
      });
      const noKey = await fetch(`${fake.azureEndpoint}/openai/models?api-version=2024-10-21`);
      assert.equal(noKey.status, 401);
      const noVersion = await fetch(`${fake.azureEndpoint}/openai/models`, { headers: { 'api-key': 'k' } });
      assert.equal(noVersion.status, 404);
      const posted = await azureFetch('/openai/models?api-version=2024-10-21', {});
      assert.equal(posted.status, 404);
    });

    it('v1 route: OpenAI SDK with the Azure base URL; dated api-version rejected', async () => {
      const v1 = new OpenAI({ apiKey: 'az-v1', baseURL: `${fake.azureEndpoint}/openai/v1`, maxRetries: 0 });
      const r = await v1.responses.create({ model: 'gpt-4o', input: 'hello' });
      assert.equal(r.model, 'gpt-4o-2024-08-06');
      assert.equal(fake.requests.at(-1)?.surface, 'azure-v1');
      const models = await fetch(`${fake.azureEndpoint}/openai/v1/models`, { headers: { 'api-key': 'k' } });
      assert.equal(models.status, 200);
      const dated = await azureFetch('/openai/v1/chat/completions?api-version=2024-10-21', {
        model: 'gpt-4o',
        messages,
      });
      assert.equal(dated.status, 400);
      const unknown = await azureFetch('/openai/v1/embeddings', { model: 'nope', input: 'x' });
      assert.equal(unknown.status, 404);
    });
  });

  describe('control surface', () => {
    it('latch: first chunk arrives, the rest only after release', async () => {
      const latch = fake.holdStreams();
      const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      const it = stream[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      assert.equal(first.value?.choices[0]?.delta.role, 'assistant');
      await latch.waitForHeld(1);
      let second = false;
      const next = it.next().then((r) => {
        second = true;
        return r;
      });
      for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(second, false);
      latch.release();
      assert.equal((await next).value?.choices[0]?.delta.content, 'Hello');
      while (!(await it.next()).done) {}
      assert.equal(latch.held, 1);
    });

    it('hang: the fake observes the client abort', async () => {
      fake.setKeyBehavior('k-hang', 'hang');
      const ac = new AbortController();
      const pending = sdk('k-hang').chat.completions.create(
        { model: 'gpt-4o', messages },
        { signal: ac.signal },
      );
      await fake.waitForRequests(1);
      ac.abort();
      await assert.rejects(pending, APIUserAbortError);
      const rec = await fake.waitForAbort();
      assert.equal(rec.key, 'k-hang');
      assert.equal(rec.aborted, true);
      assert.equal(await rec.closed, 'aborted');
      assert.equal(rec.status, undefined);
    });

    it('answer text is configurable', async () => {
      fake.setAnswer('One two three');
      try {
        const r = await client.chat.completions.create({ model: 'gpt-4o', messages });
        assert.equal(r.choices[0]?.message.content, 'One two three');
        assert.equal(r.usage?.completion_tokens, 3);
      } finally {
        fake.setAnswer(DEFAULT_ANSWER);
      }
    });
  });

  it('main.ts prints the listening line and exits on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['test/fake-upstream/main.ts', '--port', '0', '--host', '127.0.0.1'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const match = /^listening (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(line.toString());
    assert.ok(match?.[1], line.toString());
    const res = await fetch(`${match[1]}/v1/models`, { headers: { authorization: 'Bearer k' } });
    assert.equal(res.status, 200);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  });
});
