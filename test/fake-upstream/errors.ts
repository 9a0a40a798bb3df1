// Exact error bodies and headers of OpenAI ({"error":{message,type,param,code}}) and Azure OpenAI
// ({"error":{code,message}} gateway errors; content filter in the OpenAI shape plus innererror).
import type { JsonObject } from './openai-format.ts';

export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: JsonObject;
}

const KEYS_URL = 'https://platform.openai.com/account/api-keys';

const openai = (
  status: number,
  message: string,
  type: string | null,
  param: string | null = null,
  code: string | null = null,
  headers: Record<string, string> = {},
): ErrorReply => ({ status, headers, body: { error: { message, type, param, code } } });

const azure = (
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): ErrorReply => ({
  status,
  headers,
  body: { error: { code, message } },
});

/** Masks like OpenAI: first 8 chars ("sk-proj-" / "sk-abcde"), asterisks, last 4. Short keys keep only the last 4. */
export function maskKey(key: string): string {
  if (key.length <= 12) return `${'*'.repeat(Math.max(0, key.length - 4))}${key.slice(-4)}`;
  return `${key.slice(0, 8)}${'*'.repeat(key.length - 12)}${key.slice(-4)}`;
}

export const openaiErrors = {
  missingKey: (): ErrorReply =>
    openai(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
      'invalid_request_error',
    ),
  invalidKey: (key: string): ErrorReply =>
    openai(
      401,
      `Incorrect API key provided: ${maskKey(key)}. You can find your API key at ${KEYS_URL}.`,
      'invalid_request_error',
      null,
      'invalid_api_key',
    ),
  /**
   * `reset`: when the exhausted limit resets, as OpenAI writes it (`120ms`, `6m0s`); the message
   * says the same. `retryAfter: false`: no `retry-after` header, as some real 429s come.
   */
  rateLimited: (
    model: string,
    retryAfterSeconds: number,
    limitType: 'requests' | 'tokens',
    opts: { reset?: string; retryAfter?: boolean } = {},
  ): ErrorReply => {
    const what =
      limitType === 'requests' ? 'requests per min (RPM): Limit 500' : 'tokens per min (TPM): Limit 30000';
    const used = limitType === 'requests' ? 'Used 500, Requested 1' : 'Used 29800, Requested 400';
    const reset = opts.reset ?? `${retryAfterSeconds}s`;
    return openai(
      429,
      `Rate limit reached for ${model} in organization org-fakeupstream on ${what}, ${used}. Please try again in ${reset}. Visit https://platform.openai.com/account/rate-limits to learn more.`,
      limitType,
      null,
      'rate_limit_exceeded',
      {
        ...(opts.retryAfter === false ? {} : { 'retry-after': String(retryAfterSeconds) }),
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': limitType === 'requests' ? '0' : '499',
        'x-ratelimit-reset-requests': limitType === 'requests' ? reset : '120ms',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-tokens': limitType === 'tokens' ? '0' : '29600',
        'x-ratelimit-reset-tokens': limitType === 'tokens' ? reset : '800ms',
      },
    );
  },
  insufficientQuota: (): ErrorReply =>
    openai(
      429,
      'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
      'insufficient_quota',
      null,
      'insufficient_quota',
    ),
  forbidden: (): ErrorReply =>
    openai(
      403,
      'Country, region, or territory not supported',
      'request_forbidden',
      null,
      'unsupported_country_region_territory',
    ),
  /** The key's project may not use `model` (project model limits): 403, though the code says not found. */
  projectModelAccess: (project: string, model: string): ErrorReply =>
    openai(
      403,
      `Project \`${project}\` does not have access to model \`${model}\``,
      'invalid_request_error',
      null,
      'model_not_found',
    ),
  invalidPrompt: (): ErrorReply =>
    openai(
      400,
      'Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting',
      'invalid_request_error',
      null,
      'invalid_prompt',
    ),
  serverError: (requestId: string): ErrorReply =>
    openai(
      500,
      `The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if you keep seeing this error. (Please include the request ID ${requestId} in your email.)`,
      'server_error',
    ),
  overloaded: (): ErrorReply => openai(503, 'The server is overloaded or not ready yet.', 'server_error'),
  invalidJson: (): ErrorReply =>
    openai(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
      'invalid_request_error',
    ),
  missingModel: (): ErrorReply => openai(400, 'you must provide a model parameter', 'invalid_request_error'),
  missingParam: (param: string): ErrorReply =>
    openai(
      400,
      `Missing required parameter: '${param}'.`,
      'invalid_request_error',
      param,
      'missing_required_parameter',
    ),
  invalidType: (param: string, expected: string, got: string): ErrorReply =>
    openai(
      400,
      `Invalid type for '${param}': expected ${expected}, but got ${got} instead.`,
      'invalid_request_error',
      param,
      'invalid_type',
    ),
  emptyArray: (param: string): ErrorReply =>
    openai(
      400,
      `Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`,
      'invalid_request_error',
      param,
      'empty_array',
    ),
  streamOptionsWithoutStream: (): ErrorReply =>
    openai(
      400,
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'invalid_request_error',
      'stream_options',
    ),
  modelNotFound: (model: string): ErrorReply =>
    openai(
      404,
      `The model \`${model}\` does not exist or you do not have access to it.`,
      'invalid_request_error',
      null,
      'model_not_found',
    ),
  retrieveModelNotFound: (model: string): ErrorReply =>
    openai(404, `The model '${model}' does not exist`, 'invalid_request_error', 'model', 'model_not_found'),
  invalidUrl: (method: string, path: string): ErrorReply =>
    openai(404, `Invalid URL (${method} ${path})`, 'invalid_request_error'),
  invalidMethod: (method: string, path: string): ErrorReply =>
    openai(405, `Invalid method for URL (${method} ${path})`, 'invalid_request_error'),
};

export const azureErrors = {
  missingKey: (): ErrorReply =>
    azure(
      401,
      '401',
      'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.',
    ),
  invalidKey: (): ErrorReply =>
    azure(
      401,
      '401',
      'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
    ),
  /** `retryAfter: false`: neither `retry-after` nor `retry-after-ms`, as some real 429s come. */
  rateLimited: (
    operation: string,
    apiVersion: string,
    retryAfterSeconds: number,
    opts: { retryAfter?: boolean } = {},
  ): ErrorReply =>
    azure(
      429,
      '429',
      `Requests to the ${operation} Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfterSeconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
      {
        ...(opts.retryAfter === false
          ? {}
          : {
              'retry-after': String(retryAfterSeconds),
              'retry-after-ms': String(retryAfterSeconds * 1000),
            }),
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-remaining-tokens': '0',
      },
    ),
  quotaExceeded: (): ErrorReply =>
    azure(
      403,
      '403',
      'Out of call volume quota for OpenAI S0 pricing tier. Please retry after 3 days. To increase your limits, please contact support.',
    ),
  /** Key-based auth disabled on the resource. */
  forbidden: (): ErrorReply =>
    azure(403, 'AuthenticationTypeDisabled', 'Key based authentication is disabled for this resource.'),
  deploymentNotFound: (): ErrorReply =>
    azure(
      404,
      'DeploymentNotFound',
      'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
    ),
  resourceNotFound: (): ErrorReply => azure(404, '404', 'Resource not found'),
  apiVersionNotSupported: (): ErrorReply => azure(400, 'BadRequest', 'API version not supported'),
  /** A body field the api-version does not know (`stream_options` before 2024-09-01-preview). */
  unrecognizedArgument: (field: string): ErrorReply => ({
    status: 400,
    headers: {},
    body: {
      error: {
        message: `Unrecognized request argument supplied: ${field}. Please contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 for further questions.`,
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    },
  }),
  apiVersionNotAllowedOnV1: (): ErrorReply =>
    azure(400, 'BadRequest', 'api-version query parameter is not allowed when using /v1 path'),
  serverError: (): ErrorReply =>
    azure(
      500,
      'InternalServerError',
      'Backend returned unexpected response. Please contact Microsoft for help.',
    ),
  overloaded: (): ErrorReply =>
    azure(
      503,
      'ServiceUnavailable',
      'The service is temporarily unable to process your request. Please try again later.',
    ),
  contentFilter: (): ErrorReply => ({
    status: 400,
    headers: {},
    body: {
      error: {
        message:
          "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        type: null,
        param: 'prompt',
        code: 'content_filter',
        status: 400,
        innererror: {
          code: 'ResponsibleAIPolicyViolation',
          content_filter_result: {
            hate: { filtered: false, severity: 'safe' },
            jailbreak: { filtered: false, detected: false },
            self_harm: { filtered: false, severity: 'safe' },
            sexual: { filtered: false, severity: 'safe' },
            violence: { filtered: true, severity: 'medium' },
          },
        },
      },
    },
  }),
};
