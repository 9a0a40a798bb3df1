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

/**
 * The models the configured upstream keys can serve: Azure keys name theirs in their
 * deployments; for OpenAI keys the upstream's own `GET /models` is asked (through the pool, so a
 * bad key fails over) and remembered for a minute. A failed refresh (no answer, or one that is
 * not 2xx) serves the last good list.
 */
export class ModelCatalog {
  readonly #pool: UpstreamPool;
  readonly #forwarder: Forwarder;
  readonly #ttlMs: number;
  #openai: { models: ModelEntry[]; fetchedAt: number } | undefined;
  /** Every model name seen served, for bounding metric labels (capped). */
  readonly #known = new Set<string>();

  constructor(options: { pool: UpstreamPool; forwarder: Forwarder; ttlMs?: number }) {
    this.#pool = options.pool;
    this.#forwarder = options.forwarder;
    this.#ttlMs = options.ttlMs ?? 60_000;
  }

  async list(signal: AbortSignal): Promise<ModelEntry[]> {
    const byId = new Map<string, ModelEntry>();
    for (const state of this.#pool.states) {
      for (const d of state.key.deployments ?? []) {
        for (const id of d.models) byId.set(id, { id, object: 'model', created: 0, owned_by: 'azure' });
      }
    }
    if (this.#pool.states.some((s) => s.key.provider === 'openai')) {
      for (const m of await this.#openaiModels(signal)) if (!byId.has(m.id)) byId.set(m.id, m);
    }
    for (const id of byId.keys()) if (this.#known.size < 500) this.#known.add(id);
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** A metric label for a client-supplied model name: a served model's own name, else `other`. */
  label(model: string | undefined): string {
    if (model === undefined) return 'none';
    if (this.#known.has(model)) return model;
    const azure = this.#pool.states.some((s) => s.key.deployments?.some((d) => d.models.includes(model)));
    if (azure && this.#known.size < 500) this.#known.add(model);
    return azure ? model : 'other';
  }

  #inflight: Promise<ModelEntry[]> | undefined;

  async #openaiModels(signal: AbortSignal): Promise<ModelEntry[]> {
    if (this.#openai && Date.now() - this.#openai.fetchedAt < this.#ttlMs) return this.#openai.models;
    // Concurrent askers share one upstream call. It runs under its own deadline, not under the
    // signal of whoever asked first: that client leaving must not fail the others waiting on it.
    // Each asker stops waiting when its own signal aborts; the call goes on and fills the cache.
    this.#inflight ??= this.#fetchOpenAi(AbortSignal.timeout(FETCH_TIMEOUT_MS)).finally(() => {
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
