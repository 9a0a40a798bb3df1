import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyAnswer,
  classifyTransportError,
  type Outcome,
  retryAfterMs,
} from '../../app/src/upstream/classify.ts';
import type { Provider } from '../../app/src/upstream/types.ts';
import { azureErrors, type ErrorReply, openaiErrors } from '../fake-upstream/index.ts';

const answer = (reply: ErrorReply) => ({
  status: reply.status,
  headers: reply.headers,
  body: JSON.stringify(reply.body),
});

describe('classifyAnswer: OpenAI and Azure error bodies', () => {
  const table: Array<
    [
      string,
      ErrorReply | { status: number; headers: Record<string, string>; body?: string },
      Outcome,
      Provider?,
    ]
  > = [
    ['OpenAI 200', { status: 200, headers: {} }, { kind: 'success' }],
    [
      'OpenAI 401 invalid key',
      openaiErrors.invalidKey('sk-proj-abcdefghijkl'),
      { kind: 'key_disabled', reason: '401 invalid_api_key' },
    ],
    [
      'OpenAI 403 unsupported region',
      openaiErrors.forbidden(),
      { kind: 'key_disabled', reason: '403 unsupported_country_region_territory' },
    ],
    [
      'OpenAI 429 insufficient_quota',
      openaiErrors.insufficientQuota(),
      { kind: 'key_disabled', reason: 'insufficient_quota' },
    ],
    [
      'OpenAI 429 rate limit (requests)',
      openaiErrors.rateLimited('gpt-4o', 7, 'requests'),
      { kind: 'key_cooling', retryAfterMs: 7_000, reason: '429 rate_limit_exceeded' },
    ],
    [
      'OpenAI 429 without retry-after: the exhausted limit (requests) resets in 120ms, cooled the 1 s floor',
      openaiErrors.rateLimited('gpt-4o', 7, 'requests', { reset: '120ms', retryAfter: false }),
      { kind: 'key_cooling', retryAfterMs: 1_000, reason: '429 rate_limit_exceeded' },
    ],
    [
      'OpenAI 429 without retry-after: the exhausted limit (tokens) resets in 6m0s',
      openaiErrors.rateLimited('gpt-4o', 7, 'tokens', { reset: '6m0s', retryAfter: false }),
      { kind: 'key_cooling', retryAfterMs: 360_000, reason: '429 rate_limit_exceeded' },
    ],
    [
      'Azure 429 without retry-after(-ms) and no reset headers: the default',
      azureErrors.rateLimited('Responses_Create', 'v1', 6, { retryAfter: false }),
      { kind: 'key_cooling', retryAfterMs: 20_000, reason: '429 429' },
    ],
    [
      'OpenAI 500',
      openaiErrors.serverError('req_1'),
      { kind: 'upstream_failure', reason: '500 server_error', timeout: false },
    ],
    [
      'OpenAI 503 overloaded',
      openaiErrors.overloaded(),
      { kind: 'upstream_failure', reason: '503 server_error', timeout: false },
    ],
    [
      "OpenAI 403 model_not_found: the key's project may not use the model",
      openaiErrors.projectModelAccess('proj_abc', 'gpt-4.1'),
      { kind: 'model_refused' },
    ],
    [
      'OpenAI 403: the model needs a verified organization',
      {
        status: 403,
        headers: {},
        body: JSON.stringify({
          error: {
            message:
              'Your organization must be verified to use the model `gpt-image-1`. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate.',
            type: 'invalid_request_error',
            param: null,
            code: null,
          },
        }),
      },
      { kind: 'model_refused' },
    ],
    [
      'Azure 403 network rules',
      {
        status: 403,
        headers: {},
        body: JSON.stringify({
          error: { code: '403', message: 'Access denied due to Virtual Network/Firewall rules.' },
        }),
      },
      { kind: 'key_disabled', reason: '403 unauthorized' },
    ],
    ['OpenAI 400 invalid prompt', openaiErrors.invalidPrompt(), { kind: 'client_error' }],
    ['OpenAI 400 missing param', openaiErrors.missingParam('messages'), { kind: 'client_error' }],
    ['OpenAI 404 model not found', openaiErrors.modelNotFound('gpt-9'), { kind: 'client_error' }],
    [
      '422 unprocessable',
      { status: 422, headers: {}, body: '{"error":{"message":"bad"}}' },
      { kind: 'client_error' },
    ],
    ['Azure 401 invalid key', azureErrors.invalidKey(), { kind: 'key_disabled', reason: '401 unauthorized' }],
    ['Azure 403 quota', azureErrors.quotaExceeded(), { kind: 'key_disabled', reason: 'insufficient_quota' }],
    [
      'Azure 403 key auth disabled',
      azureErrors.forbidden(),
      { kind: 'key_disabled', reason: '403 AuthenticationTypeDisabled' },
    ],
    [
      'Azure 429 with retry-after-ms',
      azureErrors.rateLimited('ChatCompletions_Create', '2024-10-21', 6),
      { kind: 'key_cooling', retryAfterMs: 6_000, reason: '429 429' },
    ],
    [
      'Azure 500',
      azureErrors.serverError(),
      { kind: 'upstream_failure', reason: '500 InternalServerError', timeout: false },
    ],
    [
      'Azure 503',
      azureErrors.overloaded(),
      { kind: 'upstream_failure', reason: '503 ServiceUnavailable', timeout: false },
    ],
    [
      "Azure 404 DeploymentNotFound: the key's resource lacks the configured deployment",
      azureErrors.deploymentNotFound(),
      { kind: 'model_refused', deploymentMissing: true },
      'azure',
    ],
    [
      'the same 404 through an OpenAI-style upstream, where the client named the model',
      azureErrors.deploymentNotFound(),
      { kind: 'client_error' },
      'openai',
    ],
    ['Azure 404 resource not found', azureErrors.resourceNotFound(), { kind: 'client_error' }, 'azure'],
    ['Azure 400 content filter', azureErrors.contentFilter(), { kind: 'client_error' }],
    [
      '502 with an HTML body',
      { status: 502, headers: {}, body: '<html>bad gateway</html>' },
      { kind: 'upstream_failure', reason: '502', timeout: false },
    ],
    ['408', { status: 408, headers: {} }, { kind: 'upstream_failure', reason: '408', timeout: false }],
    [
      'an odd upstream: a code with control characters, and far too long',
      {
        status: 500,
        headers: {},
        body: JSON.stringify({ error: { code: `nul\u0000tab\t${'x'.repeat(200)}`, message: 'm' } }),
      },
      { kind: 'upstream_failure', reason: `500 nul?tab?${'x'.repeat(92)}`, timeout: false },
    ],
  ];
  for (const [name, reply, expected, provider] of table) {
    it(name, () => {
      const input =
        'body' in reply && typeof reply.body !== 'string'
          ? answer(reply as ErrorReply)
          : (reply as { status: number; headers: Record<string, string>; body?: string });
      assert.deepEqual(classifyAnswer({ ...input, provider }), expected);
    });
  }
});

describe('retryAfterMs', () => {
  it('prefers retry-after-ms, reads seconds and HTTP dates, defaults and caps', () => {
    assert.equal(retryAfterMs({ 'retry-after-ms': '1500', 'retry-after': '9' }), 1500);
    assert.equal(retryAfterMs({ 'retry-after': '3' }), 3000);
    assert.equal(retryAfterMs({ 'retry-after': '0' }), 1000);
    assert.equal(retryAfterMs({ 'retry-after': new Date(10_000 + 5_000).toUTCString() }, 10_000), 5_000);
    assert.equal(retryAfterMs({}), 20_000);
    assert.equal(retryAfterMs({ 'retry-after': '999999' }), 600_000);
  });

  it("without retry-after, uses OpenAI's reset of the exhausted limit, bounded like retry-after", () => {
    const limits = (requests: [string, string] | [], tokens: [string, string] | []) => ({
      ...(requests.length
        ? { 'x-ratelimit-remaining-requests': requests[0], 'x-ratelimit-reset-requests': requests[1] }
        : {}),
      ...(tokens.length
        ? { 'x-ratelimit-remaining-tokens': tokens[0], 'x-ratelimit-reset-tokens': tokens[1] }
        : {}),
    });
    // The exhausted one, even when the other resets later.
    assert.equal(retryAfterMs(limits(['0', '2s'], ['29600', '30s'])), 2_000);
    assert.equal(retryAfterMs(limits(['499', '120ms'], ['0', '33.023s'])), 33_023);
    // Negative remaining is exhausted too.
    assert.equal(retryAfterMs(limits(['12', '9s'], ['-27689', '2m52.8s'])), 172_800);
    // Both exhausted, or neither clearly: the later one.
    assert.equal(retryAfterMs(limits(['0', '3s'], ['0', '5s'])), 5_000);
    assert.equal(
      retryAfterMs({ 'x-ratelimit-reset-requests': '4s', 'x-ratelimit-reset-tokens': '1s' }),
      4_000,
    );
    assert.equal(retryAfterMs(limits(['0', '2s'], [])), 2_000);
    // Bounded: at least 1 s, at most 10 min.
    assert.equal(retryAfterMs(limits(['0', '120ms'], ['10', '800ms'])), 1_000);
    assert.equal(retryAfterMs(limits(['0', '2h0m0s'], [])), 600_000);
    // Retry-After wins; an unreadable reset is no reset.
    assert.equal(retryAfterMs({ 'retry-after': '3', ...limits(['0', '6m0s'], []) }), 3_000);
    assert.equal(retryAfterMs(limits(['0', '64'], ['0', 'soon'])), 20_000);
  });
});

describe('classifyTransportError', () => {
  it('tells timeouts from other network failures', () => {
    assert.deepEqual(
      classifyTransportError(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' })),
      {
        kind: 'upstream_failure',
        reason: 'timeout (UND_ERR_HEADERS_TIMEOUT)',
        timeout: true,
      },
    );
    assert.deepEqual(classifyTransportError(Object.assign(new Error('x'), { code: 'ECONNRESET' })), {
      kind: 'upstream_failure',
      reason: 'network (ECONNRESET)',
      timeout: false,
    });
  });
});
