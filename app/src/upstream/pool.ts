import type pg from 'pg';
import type { Outcome } from './classify.ts';
import type { KeyState, UpstreamKeyStore } from './key-store.ts';
import { transition } from './key-transitions.ts';
import type { Operation, Provider, ProviderAdapter, UpstreamKey, UpstreamTarget } from './types.ts';

/** A key that can serve the request, with the request built for it. */
export interface Candidate {
  key: UpstreamKey;
  target: UpstreamTarget;
}

export type Selection =
  | { ok: true; candidates: Candidate[] }
  /** No key, whatever its state, can serve this model. */
  | { ok: false; reason: 'no_key_serves_model' }
  /** Keys exist for the model but every one is cooling or disabled. */
  | { ok: false; reason: 'all_keys_unavailable' };

export interface UpstreamPoolOptions {
  store: UpstreamKeyStore;
  pool: pg.Pool;
  adapters: Partial<Record<Provider, ProviderAdapter>>;
  /** How often the shared state is re-read from Postgres. */
  refreshMs?: number;
  /** How long a newly disabled key waits for its first probe (out of quota: QUOTA_PROBE_INTERVAL_MS). */
  firstProbeDelayMs?: number;
  /** Consecutive failures after which a key cools down, and the backoff base. */
  failureThreshold?: number;
  failureBackoffMs?: number;
  onError?: (what: string, err: unknown) => void;
  /** Every reported outcome, for metrics. */
  onOutcome?: (provider: Provider, outcome: Outcome['kind']) => void;
  now?: () => number;
}

/**
 * The upstream key pool. Load is spread round robin over the keys that can serve the model and
 * are usable now: active, or cooling with their time up. State lives in Postgres and is shared by
 * every instance; this instance applies its own reports at once and re-reads the table on a short
 * timer to see the others'.
 */
export class UpstreamPool {
  readonly #o: Required<Omit<UpstreamPoolOptions, 'onError' | 'onOutcome' | 'now'>> &
    Pick<UpstreamPoolOptions, 'onError' | 'onOutcome'>;
  readonly #now: () => number;
  #states: KeyState[] = [];
  #cursor = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #writes = new Set<Promise<unknown>>();
  readonly #lastWrite = new Map<number, Promise<unknown>>();
  #changedDuringLoad: Set<number> | undefined;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(options: UpstreamPoolOptions) {
    this.#o = {
      ...options,
      refreshMs: options.refreshMs ?? 2_000,
      firstProbeDelayMs: options.firstProbeDelayMs ?? 60_000,
      failureThreshold: options.failureThreshold ?? 3,
      failureBackoffMs: options.failureBackoffMs ?? 10_000,
    };
    this.#now = options.now ?? Date.now;
  }

  /**
   * Loads the keys and keeps them fresh. A failed first load is reported, not thrown: the proxy
   * still starts (health says what is wrong) and the timer keeps trying.
   */
  async start(): Promise<void> {
    await this.refresh().catch((err: unknown) => this.#o.onError?.('load upstream keys', err));
    this.#timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.#o.onError?.('refresh upstream keys', err));
    }, this.#o.refreshMs);
    this.#timer.unref();
  }

  /** Stops refreshing and waits for the state writes still in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#writes]);
  }

  /**
   * Re-reads the shared state, after this instance's own writes have landed (so it does not read
   * them back stale). One load runs at a time: a refresh asked for during one runs once it is over
   * (the running one may have read too early for the caller), and callers meanwhile share it.
   */
  refresh(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (!this.#running) return this.#run();
    const queued = this.#running
      .catch(() => {})
      .then(() => {
        this.#queued = undefined;
        return this.#run();
      });
    this.#queued = queued;
    return queued;
  }

  #run(): Promise<void> {
    const run = this.#load().finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #load(): Promise<void> {
    // Tracked from before waiting for the writes: a report made meanwhile starts a write this wait
    // does not cover, which may land after the table is read.
    const changed = new Set<number>();
    this.#changedDuringLoad = changed;
    let loaded: KeyState[];
    try {
      await Promise.allSettled([...this.#writes]);
      loaded = await this.#o.store.load();
    } finally {
      this.#changedDuringLoad = undefined;
    }
    // A key this instance reported on meanwhile keeps its newer local state.
    this.#states = loaded.map((s) =>
      changed.has(s.key.id) ? (this.#states.find((o) => o.key.id === s.key.id) ?? s) : s,
    );
  }

  /** Every key state, for metrics and the admin API. */
  get states(): readonly KeyState[] {
    return this.#states;
  }

  select(operation: Operation, model: string | undefined, body?: Buffer, provider?: Provider): Selection {
    const usable: Candidate[] = [];
    let serving = 0;
    const start = this.#cursor++;
    const n = this.#states.length;
    for (let i = 0; i < n; i++) {
      const state = this.#states[(start + i) % n] as KeyState;
      if (provider && state.key.provider !== provider) continue;
      const target = this.#o.adapters[state.key.provider]?.target(operation, model, state.key, body);
      if (!target) continue;
      serving++;
      if (this.#usable(state)) usable.push({ key: state.key, target });
    }
    if (serving === 0) return { ok: false, reason: 'no_key_serves_model' };
    if (usable.length === 0) return { ok: false, reason: 'all_keys_unavailable' };
    return { ok: true, candidates: usable };
  }

  /**
   * The models an Azure-style path's deployment name stands for: those of a configured deployment
   * of that name (a bare `gpt-35-turbo` serves `gpt-3.5-turbo` too), else the name itself (with
   * OpenAI keys, deployment = model).
   */
  modelsForDeployment(deployment: string): string[] {
    for (const state of this.#states) {
      const found = state.key.deployments?.find((d) => d.deployment === deployment);
      if (found && found.models.length > 0) return found.models;
    }
    return [deployment];
  }

  /**
   * A key's status as far as serving goes: a cooling key whose time is up is as good as active
   * (it stays `cooling` in Postgres until a request through it succeeds).
   */
  statusNow(state: KeyState): KeyState['status'] {
    if (state.status !== 'cooling') return state.status;
    return (state.cooldownUntil?.getTime() ?? 0) <= this.#now() ? 'active' : 'cooling';
  }

  #usable(state: KeyState): boolean {
    return this.statusNow(state) === 'active';
  }

  /**
   * Records what happened with a key (see `transition`). The local state changes at once; the
   * row is written in the background (errors are reported) and awaited by `refresh` and `stop`.
   */
  report(keyId: number, outcome: Outcome): void {
    const state = this.#states.find((s) => s.key.id === keyId);
    if (!state) return;
    this.#o.onOutcome?.(state.key.provider, outcome.kind);
    const change = transition(state, outcome, this.#o, this.#now());
    if (!change) return;
    Object.assign(state, change.next);
    this.#changedDuringLoad?.add(keyId);
    // One key's writes go in order (a pool runs them on different connections otherwise, and a
    // relative `failure_count + 1` could land after the absolute value of a later cooldown).
    const previous = this.#lastWrite.get(keyId) ?? Promise.resolve();
    const write = previous
      .then(() => this.#o.pool.query(change.sql, [keyId, ...change.params]))
      .catch((err: unknown) => this.#o.onError?.('record upstream key state', err))
      .finally(() => {
        this.#writes.delete(write);
        if (this.#lastWrite.get(keyId) === write) this.#lastWrite.delete(keyId);
      });
    this.#writes.add(write);
    this.#lastWrite.set(keyId, write);
  }
}
