import { Agent, type Dispatcher } from 'undici';
import { ApiError, ClientGoneError } from '../errors.ts';
import { classifyAnswer, classifyTransportError, type Outcome } from './classify.ts';
import { Deadline } from './deadline.ts';
import type { Candidate, UpstreamPool } from './pool.ts';
import { clientHeaders, isEventStream } from './response-headers.ts';
import type { Operation, Provider, UpstreamKey } from './types.ts';
import { requestUpstream, type UpstreamAnswer, type UpstreamBody } from './upstream-request.ts';

export interface ForwarderTimeouts {
  connectMs: number;
  /** Until the upstream's response headers arrive (a long completion may think first). */
  headersMs: number;
  /** Longest silence between two body chunks. */
  bodyMs: number;
  /** Budget across all attempts of one request. */
  totalMs: number;
  maxAttempts: number;
}

export const DEFAULT_TIMEOUTS: ForwarderTimeouts = {
  connectMs: 10_000,
  headersMs: 300_000,
  bodyMs: 300_000,
  totalMs: 330_000,
  maxAttempts: 3,
};

/** An upstream response to relay to the client: 2xx, or the client's own mistake as judged upstream. */
export interface Relayable {
  key: UpstreamKey;
  attempts: number;
  status: number;
  /**
   * The upstream's headers that reach the client (see `clientHeaders`): only these are kept, as a
   * stream keeps what it relays for as long as it lasts.
   */
  clientHeaders: Record<string, string>;
  /** A body still arriving (2xx, asked for unbuffered) that the upstream sent as an event stream. */
  eventStream: boolean;
  /** The body as it arrives (a 2xx stream), or read whole (JSON, or the error body of a 4xx). */
  body: UpstreamBody | Buffer;
}

export interface ForwardRequest {
  operation: Operation;
  model: string | undefined;
  body: Buffer | undefined;
  /**
   * The client's body as it came (model aside), when `body` adds a usage request to it: for the
   * upstreams that refuse `stream_options` (see UpstreamTarget). A function: only such an upstream
   * calls it, so it is serialised only when needed.
   */
  plainBody?: () => Buffer;
  method: 'GET' | 'POST';
  accept: string;
  /** Read a 2xx body whole inside the attempt, so a failure while reading still fails over. */
  buffer: boolean;
  /** Only keys of this provider (listing OpenAI's models must not ask Azure). */
  provider?: Provider;
  /** Aborted when the client goes away: the upstream request is cancelled at once. */
  signal: AbortSignal;
}

const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * A failover attempt is started only while at least this share of the total budget is left (66 s
 * of the default 330 s). After an attempt that waited out the headers timeout (300 s) only 30 s
 * are left: too little for a completion that slow, which a second key would generate, and bill,
 * only to be cut off. A stream needs only its first bytes within the budget; a fifth is plenty.
 */
const MIN_FAILOVER_SHARE = 0.2;

export interface ForwarderOptions {
  pool: UpstreamPool;
  timeouts?: Partial<ForwarderTimeouts>;
  /**
   * An Azure key's resource answered that it lacks the configured deployment: requests still go
   * to the other keys, so without a word to the operator the gap would go unnoticed.
   */
  onDeploymentMissing?: (keyId: number, deployment: string) => void;
}

/**
 * Sends a request upstream through keep-alive connection pools, failing over to another key on
 * a failure that happens before anything reached the client: bounded attempts within a total
 * deadline. Each answer is classified and reported to the pool. Returns what to relay, or
 * throws the contract's 503/502/504.
 */
export class Forwarder {
  readonly #pool: UpstreamPool;
  readonly #t: ForwarderTimeouts;
  readonly #agent: Agent;
  readonly #onDeploymentMissing: ForwarderOptions['onDeploymentMissing'];

  constructor(options: ForwarderOptions) {
    this.#pool = options.pool;
    this.#onDeploymentMissing = options.onDeploymentMissing;
    this.#t = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.#agent = new Agent({
      connect: { timeout: this.#t.connectMs },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      headersTimeout: this.#t.headersMs,
      bodyTimeout: this.#t.bodyMs,
    });
  }

  /** The keep-alive connection pools, shared with the key prober. */
  get dispatcher(): Dispatcher {
    return this.#agent;
  }

  async forward(req: ForwardRequest): Promise<Relayable> {
    const selection = this.#pool.select(req.operation, req.model, req.body, req.provider);
    if (!selection.ok) {
      if (selection.reason === 'no_key_serves_model') {
        throw new ApiError('model_not_found', `The model '${req.model ?? ''}' is not served by this proxy.`, {
          param: 'model',
        });
      }
      throw new ApiError(
        'upstream_unavailable',
        'Every upstream key is cooling down or disabled; retry shortly.',
      );
    }
    // Gone before any attempt (an aborted signal would otherwise read as a deadline missed).
    if (req.signal.aborted) throw new ClientGoneError();
    const budget = new Deadline(req.signal, this.#t.totalMs);
    let handedOver = false;
    try {
      // The last attempt's outcome, refusals of the model aside.
      let last: Outcome | undefined;
      // A key's refusal of the model (not of the key) goes on to the next key; it is relayed only
      // when every attempt was one: no key tried may use the model.
      let refusal: Relayable | undefined;
      const tries = selection.candidates.slice(0, this.#t.maxAttempts);
      for (const [i, candidate] of tries.entries()) {
        if (budget.signal.aborted) break;
        if (i > 0 && budget.remainingMs < this.#t.totalMs * MIN_FAILOVER_SHARE) break;
        const result = await this.#attempt(candidate, req, budget.signal);
        if (req.signal.aborted) throw new ClientGoneError(candidate.key.id);
        // An attempt our own deadline cut off says nothing against its key.
        if (!result.cutOff) this.#pool.report(candidate.key.id, result.outcome);
        if (result.relay && result.outcome.kind === 'model_refused') {
          if (result.outcome.deploymentMissing) {
            this.#onDeploymentMissing?.(candidate.key.id, candidate.target.deployment ?? '');
          }
          refusal = { ...result.relay, attempts: i + 1 };
          continue;
        }
        if (result.relay) {
          // The total budget covers getting an answer; a body still to be read (a stream) is
          // bounded by undici's body timeout instead, and still follows the client until it closes.
          if (!Buffer.isBuffer(result.relay.body)) {
            budget.stopClock();
            result.relay.body.onSettled(() => budget.release());
            handedOver = true;
          }
          return { ...result.relay, attempts: i + 1 };
        }
        last = result.outcome;
      }
      if (refusal && last === undefined) return refusal;
      throw failureError(last, budget.expired);
    } finally {
      if (!handedOver) budget.release();
    }
  }

  async #attempt(
    candidate: Candidate,
    req: ForwardRequest,
    signal: AbortSignal,
  ): Promise<{ outcome: Outcome; relay?: Omit<Relayable, 'attempts'>; cutOff?: true }> {
    const options: Dispatcher.DispatchOptions = {
      origin: candidate.target.origin,
      path: candidate.target.path,
      method: req.method,
      headers: {
        ...candidate.target.headers,
        ...(req.body ? { 'content-type': 'application/json' } : {}),
        accept: req.accept,
        'accept-encoding': 'identity',
        'user-agent': 'gpt-proxy',
      },
      body: candidate.target.body ?? (candidate.target.refusesStreamOptions ? plainBody(req) : req.body),
    };
    let res: UpstreamAnswer;
    try {
      res = await requestUpstream(this.#agent, options, signal, {
        errorBodyLimit: ERROR_BODY_LIMIT,
        streamSuccess: !req.buffer,
      });
    } catch (err) {
      // Aborted by the budget's signal: the deadline (the client's leaving is the caller's to see).
      if (signal.aborted) return { outcome: classifyTransportError(timeoutLike(err)), cutOff: true };
      return { outcome: classifyTransportError(err) };
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      return { outcome: { kind: 'success' }, relay: relayable(candidate.key, res) };
    }
    // Only a 2xx body is handed over unread.
    const body = res.body as Buffer;
    const outcome = classifyAnswer({
      status: res.statusCode,
      headers: res.headers,
      body: body.toString('utf8'),
      provider: candidate.key.provider,
    });
    if (outcome.kind === 'client_error' || outcome.kind === 'model_refused') {
      return { outcome, relay: relayable(candidate.key, res) };
    }
    return { outcome };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** The body for an upstream that refuses `stream_options`. */
function plainBody(req: ForwardRequest): Buffer | undefined {
  return req.plainBody?.() ?? req.body;
}

function relayable(key: UpstreamKey, res: UpstreamAnswer): Omit<Relayable, 'attempts'> {
  return {
    key,
    status: res.statusCode,
    clientHeaders: clientHeaders(res.headers),
    eventStream: !Buffer.isBuffer(res.body) && isEventStream(res.headers),
    body: res.body,
  };
}

function timeoutLike(err: unknown): unknown {
  return Object.assign(new Error('deadline exceeded'), { code: 'UND_ERR_DEADLINE_TIMEOUT', cause: err });
}

function failureError(last: Outcome | undefined, deadlineHit: boolean): ApiError {
  if (deadlineHit || (last?.kind === 'upstream_failure' && last.timeout)) {
    return new ApiError('upstream_timeout', 'The upstream did not answer in time.');
  }
  if (last?.kind === 'upstream_failure' || last === undefined) {
    return new ApiError('upstream_error', 'The upstream failed to answer; retry shortly.');
  }
  return new ApiError(
    'upstream_unavailable',
    'Every upstream key is cooling down or disabled; retry shortly.',
  );
}
