import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toCounts, usageFromBody } from '../../app/src/usage/tokens.ts';

const body = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('usage read from an upstream answer', () => {
  it('reads both usage shapes, near the end of the body', () => {
    const chat = {
      id: 'chatcmpl-1',
      choices: [{ message: { content: 'a "usage": {"prompt_tokens": 99} inside a string' } }],
      usage: {
        prompt_tokens: 12,
        completion_tokens: 34,
        total_tokens: 46,
        prompt_tokens_details: { cached_tokens: 0 },
      },
    };
    assert.deepEqual(usageFromBody(body(chat)), { prompt: 12, completion: 34, total: 46 });
    const responses = { id: 'resp_1', usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 } };
    assert.deepEqual(usageFromBody(body(responses)), { prompt: 5, completion: 7, total: 12 });
    const embeddings = { data: [], usage: { prompt_tokens: 8, total_tokens: 8 } };
    assert.deepEqual(usageFromBody(body(embeddings)), { prompt: 8, completion: 0, total: 8 });
  });

  it('is not misled by a client\'s own "usage" echoed after the real one', () => {
    // A Responses answer repeats the request's `user` and `metadata` after `usage`.
    const responses = {
      id: 'resp_1',
      usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 },
      user: 'usage',
      metadata: { usage: 'x', note: '"usage": {"input_tokens": 1}' },
      extra: { usage: { type: 'object' } },
    };
    assert.deepEqual(usageFromBody(body(responses)), { prompt: 5, completion: 7, total: 12 });
    const spaced = Buffer.from('{"usage" :\n {"prompt_tokens": 2, "completion_tokens": 1}, "user": "usage"}');
    assert.deepEqual(usageFromBody(spaced), { prompt: 2, completion: 1, total: 3 });
  });

  it('finds nothing where there is no usable usage', () => {
    assert.equal(usageFromBody(body({ id: 'x', choices: [] })), undefined);
    assert.equal(usageFromBody(body({ usage: null })), undefined);
    assert.equal(usageFromBody(body({ usage: { completion_tokens: 3 } })), undefined);
    assert.equal(usageFromBody(Buffer.from('{"usage": {"prompt_tokens": 1')), undefined);
  });

  it('caps counts at what the integer columns hold, and ignores negative or non-numeric ones', () => {
    assert.deepEqual(toCounts({ prompt_tokens: 3e9, completion_tokens: 1e21 }), {
      prompt: 2_147_483_647,
      completion: 2_147_483_647,
      total: 2_147_483_647,
    });
    assert.deepEqual(toCounts({ prompt_tokens: 2.6, completion_tokens: -4, total_tokens: 'x' }), {
      prompt: 3,
      completion: 0,
      total: 3,
    });
  });
});
