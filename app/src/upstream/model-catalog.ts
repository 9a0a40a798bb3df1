import { ApiError } from '../errors.ts';
import type { Forwarder } from './forwarder.ts';
import type { UpstreamPool } from './pool.ts';

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** How long the shared upstream listing may take (the askers' own signals do not stop it). */
const FETCH_TIMEOUT_MS = 30_000;

/** The longest wait between two background listings while none has succeeded yet. */
const MAX_RETRY_MS = 60_000;

/** Model names remembered for the metrics label: a bound on its series, whatever the upstream lists. */
const MAX_KNOWN = 500;

export interface CatalogOptions {
  pool: UpstreamPool;
  forwarder: Forwarder;
  /** How long a listing is served from memory to `GET /v1/models` (default a minute). */
  ttlMs?: number;
  /** The first wait before the background listing is tried again, doubling up to a minute (default 2 s). */
  retryMs?: number;
  /** Between background listings once one has succeeded, for models released since (default 10 min). */
  refreshMs?: number;
}

/**
 * The models the configured upstream keys can serve: Azure keys name theirs in their
 * deployments; for OpenAI keys the upstream's own `GET /models` is asked (through the pool, so a
 * bad key fails over) and remembered for a minute. A failed refresh (no answer, or one that is
 * not 2xx) serves the last good list.
 *
 * The same listing bounds the metrics' model label, so `start` keeps it coming in the background:
 * every listing that arrives teaches the label, whoever asked for it and whether or not they still
 * wait; until one has, it is asked for again with backoff (an upstream down at start-up, or no
 * OpenAI key yet), then every `refreshMs`.
 */
export class ModelCatalog {
  readonly #pool: UpstreamPool;
  readonly #forwarder: Forwarder;
  readonly #ttlMs: number;
  readonly #retryMs: number;
  readonly #refreshMs: number;
  #openai: { models: ModelEntry[]; fetchedAt: number } | undefined;
  /** Every model name seen served, for bounding metric labels (capped). */
  readonly #known = new Set<string>();
  /** Background listings in a row that brought no list. */
  #misses = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Aborted by `close`: ends the background listing and the upstream call it waits for. */
  readonly #stop = new AbortController();

  constructor(options: CatalogOptions) {
    this.#pool = options.pool;
    this.#forwarder = options.forwarder;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#retryMs = options.retryMs ?? 2_000;
    this.#refreshMs = options.refreshMs ?? 600_000;
  }

  /** Starts the background listing: the first now (the start-up's), the next ones on a timer. */
  start(): void {
    void this.#listInBackground();
  }

  /** Stops the background listing (at shutdown): no timer left, the upstream call in flight cancelled. */
  close(): void {
    this.#stop.abort();
    clearTimeout(this.#timer);
  }

  async #listInBackground(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    try {
      if (this.#hasOpenAiKey()) await this.#openaiModels(this.#stop.signal);
    } catch {
      // Nothing to do but ask again (the askers of GET /v1/models get the error themselves).
    }
    if (this.#stop.signal.aborted) return;
    this.#misses = this.#openai ? 0 : this.#misses + 1;
    const wait = this.#openai
      ? this.#refreshMs
      : Math.min(this.#retryMs * 2 ** (this.#misses - 1), MAX_RETRY_MS);
    this.#timer = setTimeout(() => void this.#listInBackground(), wait);
    this.#timer.unref();
  }

  #hasOpenAiKey(): boolean {
    return this.#pool.states.some((s) => s.key.provider === 'openai');
  }

  #learn(ids: Iterable<string>): void {
    for (const id of ids) if (this.#known.size < MAX_KNOWN) this.#known.add(id);
  }

  async list(signal: AbortSignal): Promise<ModelEntry[]> {
    const byId = new Map<string, ModelEntry>();
    for (const state of this.#pool.states) {
      for (const d of state.key.deployments ?? []) {
        for (const id of d.models) byId.set(id, { id, object: 'model', created: 0, owned_by: 'azure' });
      }
    }
    if (this.#hasOpenAiKey()) {
      for (const m of await this.#openaiModels(signal)) if (!byId.has(m.id)) byId.set(m.id, m);
    }
    this.#learn(byId.keys());
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * A metric label for a client-supplied model name: a served model's own name, else `other`.
   * On every request's path: a lookup in what the listings taught, never a wait for one.
   */
  label(model: string | undefined): string {
    if (model === undefined) return 'none';
    if (this.#known.has(model)) return model;
    const azure = this.#pool.states.some((s) => s.key.deployments?.some((d) => d.models.includes(model)));
    if (azure) this.#learn([model]);
    return azure ? model : 'other';
  }

  #inflight: Promise<ModelEntry[]> | undefined;

  async #openaiModels(signal: AbortSignal): Promise<ModelEntry[]> {
    if (this.#openai && Date.now() - this.#openai.fetchedAt < this.#ttlMs) return this.#openai.models;
    // Concurrent askers share one upstream call. It runs under its own deadline, not under the
    // signal of whoever asked first: that client leaving must not fail the others waiting on it.
    // Each asker stops waiting when its own signal aborts; the call goes on and fills the cache.
    // The catalog's own stop (shutdown) ends it too.
    this.#inflight ??= this.#fetchOpenAi(
      AbortSignal.any([AbortSignal.timeout(FETCH_TIMEOUT_MS), this.#stop.signal]),
    ).finally(() => {
      this.#inflight = undefined;
    });
    return untilAborted(this.#inflight, signal);
  }

  async #fetchOpenAi(signal: AbortSignal): Promise<ModelEntry[]> {
    try {
      const answer = await this.#forwarder.forward({
        operation: 'models',
        model: undefined,
        body: undefined,
        method: 'GET',
        provider: 'openai',
        accept: 'application/json',
        buffer: true,
        signal,
      });
      // The forwarder relays a 4xx as the client's own mistake; here it is no list at all.
      if (answer.status < 200 || answer.status >= 300) {
        throw new ApiError('upstream_error', `The upstream answered ${answer.status} to listing its models.`);
      }
      const parsed = JSON.parse(String(answer.body)) as { data?: Array<Partial<ModelEntry>> };
      const models = (parsed.data ?? [])
        .filter((m): m is Partial<ModelEntry> & { id: string } => typeof m.id === 'string')
        .map((m) => ({
          id: m.id,
          object: 'model' as const,
          created: m.created ?? 0,
          owned_by: m.owned_by ?? 'openai',
        }));
      this.#openai = { models, fetchedAt: Date.now() };
      // Here, not in whoever asked: an asker that stopped waiting (the start-up's, a client that
      // left) must not keep the label from learning what the call brought.
      this.#learn(models.map((m) => m.id));
      return models;
    } catch (err) {
      if (this.#openai) return this.#openai.models;
      throw err instanceof ApiError
        ? err
        : new ApiError('upstream_error', 'The upstream did not give its model list; retry shortly.');
    }
  }
}

/** Settles as `promise` does, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
