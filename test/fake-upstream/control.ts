// Test-control types and primitives of the fake upstream: key behaviours, the request log, stream latch.

export type KeyBehavior =
  | { kind: 'ok' }
  /** 401 invalid_api_key (OpenAI) / 401 invalid subscription key (Azure). */
  | { kind: 'invalid_key' }
  /**
   * 429 rate_limit_exceeded with retry-after (default 1 s, type 'requests'). OpenAI: `reset` is the
   * exhausted limit's `x-ratelimit-reset-*` as OpenAI writes it (default `{retryAfterSeconds}s`);
   * `retryAfter: false` leaves out `retry-after` (and Azure's `retry-after-ms`), as some real 429s
   * do, with the `x-ratelimit-*` headers still sent.
   */
  | {
      kind: 'rate_limited';
      retryAfterSeconds?: number;
      limitType?: 'requests' | 'tokens';
      reset?: string;
      retryAfter?: false;
    }
  /** 429 insufficient_quota (OpenAI) / 403 "Out of call volume quota" (Azure). */
  | { kind: 'insufficient_quota' }
  /** 403: unsupported region (OpenAI) / key-based auth disabled on the resource (Azure). */
  | { kind: 'forbidden' }
  /**
   * OpenAI: 403 model_not_found, the key's project may not use the requested model (other models
   * still work). Azure has no such answer (a deployment serves one model): 404 DeploymentNotFound.
   */
  | { kind: 'model_no_access' }
  /** 400: invalid_prompt (OpenAI) / content_filter with innererror (Azure). */
  | { kind: 'content_filter' }
  | { kind: 'server_error' }
  | { kind: 'overloaded' }
  /** Read the request, never answer until the client or close() ends the connection. */
  | { kind: 'hang' }
  /** Destroy the socket without answering. */
  | { kind: 'reset' }
  /**
   * Send status, headers and `afterEvents` SSE frames (default 2; half the body if not streamed), then
   * destroy. `asJson`: answer a stream request in JSON all the same, as some OpenAI-compatible servers do.
   */
  | { kind: 'fail_mid_stream'; afterEvents?: number; asJson?: boolean }
  /**
   * A stream that fails as the upstream reports it inside the 200: `afterEvents` SSE frames
   * (default 2), then the error event, and the response ends normally. Chat and completions:
   * `data: {"error":{…}}` with no [DONE]; Responses: an `error` event, or with `as: 'failed'` a
   * `response.failed` event. A request that is not a stream is answered normally.
   */
  | { kind: 'error_mid_stream'; afterEvents?: number; as?: 'error' | 'failed' }
  /** Wait `ms` before the status line, then answer normally. */
  | { kind: 'slow_first_byte'; ms: number };

export type BehaviorKind = KeyBehavior['kind'];
export type KeyBehaviorInput = KeyBehavior | Exclude<BehaviorKind, 'slow_first_byte'>;

export const toBehavior = (b: KeyBehaviorInput): KeyBehavior => (typeof b === 'string' ? { kind: b } : b);

/**
 * `azure-deployments`: Azure's dated-version surface, `?api-version=` required: the deployments
 * (`/openai/deployments/{d}/…`) and the resource's model list (`/openai/models`).
 */
export type Surface = 'openai' | 'azure-deployments' | 'azure-v1';
export type Endpoint = 'chat' | 'completions' | 'embeddings' | 'responses' | 'models' | 'model';
/** finished: response fully written; aborted: the client closed first; destroyed: the fake dropped it. */
export type RequestOutcome = 'pending' | 'finished' | 'aborted' | 'destroyed';

export interface RecordedRequest {
  readonly seq: number;
  readonly method: string;
  /** Pathname as received (prefix included), without the query string. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Lowercased names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly rawBody: string;
  /** Parsed JSON body when it is an object, else undefined. */
  readonly body: Record<string, unknown> | undefined;
  /** Key from `api-key`, else from `Authorization: Bearer`. */
  readonly key: string | undefined;
  readonly surface: Surface | undefined;
  readonly endpoint: Endpoint | undefined;
  readonly deployment: string | undefined;
  readonly stream: boolean;
  behavior: BehaviorKind;
  status: number | undefined;
  outcome: RequestOutcome;
  /** True when the client closed the connection before the response finished. */
  aborted: boolean;
  /** Epoch milliseconds (fractional). */
  readonly receivedAt: number;
  firstByteAt: number | undefined;
  endedAt: number | undefined;
  /** Resolves once the response finished or the connection closed. */
  readonly closed: Promise<RequestOutcome>;
}

export const now = (): number => performance.timeOrigin + performance.now();

/** Re-evaluates predicates whenever state changes; resolves the ones that became true. */
export class Waiters {
  private readonly pending = new Set<() => boolean>();
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = (): boolean => {
        if (!check()) return false;
        resolve();
        return true;
      };
      this.pending.add(entry);
    });
  }
  notify(): void {
    for (const entry of this.pending) if (entry()) this.pending.delete(entry);
  }
}

export interface StreamLatch {
  /** Number of streams that sent their first event and reached this latch (cumulative). */
  readonly held: number;
  readonly released: boolean;
  /** Lets every held (and future) stream on this latch continue. New streams are no longer held. */
  release(): void;
  /** Resolves once at least `n` streams have reached the latch. */
  waitForHeld(n?: number): Promise<void>;
}

export class Latch implements StreamLatch {
  held = 0;
  released = false;
  private readonly waiters = new Waiters();
  private readonly releasedPromise: Promise<void>;
  private resolveRelease: () => void = () => {};
  private readonly onRelease: (latch: Latch) => void;
  constructor(onRelease: (latch: Latch) => void) {
    this.onRelease = onRelease;
    this.releasedPromise = new Promise((resolve) => {
      this.resolveRelease = resolve;
    });
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.resolveRelease();
    this.onRelease(this);
  }
  waitForHeld(n = 1): Promise<void> {
    return this.waiters.until(() => this.held >= n);
  }
  /** Called by a stream after its first event; resolves on release or when `closed` settles. */
  hold(closed: Promise<unknown>): Promise<unknown> {
    this.held++;
    this.waiters.notify();
    return Promise.race([this.releasedPromise, closed]);
  }
}

/** Mutable configuration and state shared by the server and the request handler. */
export interface FakeState {
  answer: string;
  deltaDelayMs: number;
  models: Set<string>;
  allowUnknownModels: boolean;
  /** Requested OpenAI model -> model reported in responses (e.g. 'gpt-4o' -> 'gpt-4o-2024-08-06'). */
  modelAliases: Map<string, string>;
  /** Azure deployment name -> model reported in responses. */
  deployments: Map<string, string>;
  pathPrefix: string;
  organization: string;
  project: string;
  region: string;
  behaviors: Map<string, { behavior: KeyBehavior; remaining: number | undefined }>;
  defaultBehavior: KeyBehavior;
  latch: Latch | undefined;
  record: boolean;
  requests: RecordedRequest[];
  seq: number;
  waiters: Waiters;
  /** `closed` promises of requests whose connection is still open. */
  inflight: Set<Promise<RequestOutcome>>;
  closing: boolean;
}

/** The behaviour for `key` (consuming one use of a `times`-limited behaviour). */
export function consumeBehavior(state: FakeState, key: string): KeyBehavior {
  const entry = state.behaviors.get(key);
  if (entry === undefined) return state.defaultBehavior;
  if (entry.remaining !== undefined && --entry.remaining <= 0) state.behaviors.delete(key);
  return entry.behavior;
}
