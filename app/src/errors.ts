/**
 * The closed list of error codes the proxy answers with, each with its HTTP status and OpenAI
 * error type, straight from the contract's error table. Anything else is a bug and is rendered
 * as a generic 500 whose details are logged, never sent.
 */
export const ERROR_CODES = {
  invalid_api_key: { status: 401, type: 'invalid_request_error' },
  insufficient_permissions: { status: 403, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  invalid_request: { status: 400, type: 'invalid_request_error' },
  unknown_url: { status: 404, type: 'invalid_request_error' },
  request_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'requests' },
  upstream_unavailable: { status: 503, type: 'server_error' },
  upstream_error: { status: 502, type: 'server_error' },
  upstream_timeout: { status: 504, type: 'server_error' },
  internal_error: { status: 500, type: 'server_error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export interface ApiErrorOptions {
  param?: string;
  /** Overrides the table's type where the contract allows a choice (429: `requests` or `tokens`). */
  type?: string;
  headers?: Record<string, string>;
}

/** An expected failure with a message safe to show the client. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: ApiErrorOptions = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.type = options.type ?? ERROR_CODES[code].type;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/**
 * The client went away before its answer was complete: while sending its body, or while the
 * upstream was still answering. Not an error to render: the request is recorded as 499.
 */
export class ClientGoneError extends Error {
  /** The upstream key whose attempt was in flight: that upstream may have read the prompt. */
  readonly upstreamKeyId: number | undefined;

  constructor(upstreamKeyId?: number) {
    super('client closed the connection');
    this.name = 'ClientGoneError';
    this.upstreamKeyId = upstreamKeyId;
  }
}

export const INTERNAL_ERROR_MESSAGE =
  'The server had an error while processing your request. Retry it, and quote the x-request-id header if it persists.';
