// The fake OpenAI / Azure OpenAI server (node:http only) and its test-control surface.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type FakeState,
  type KeyBehaviorInput,
  Latch,
  type RecordedRequest,
  type StreamLatch,
  toBehavior,
  Waiters,
} from './control.ts';
import { DEFAULT_MODELS } from './embeddings-format.ts';
import { handleRequest } from './handlers.ts';
import { DEFAULT_ANSWER } from './openai-format.ts';

export interface FakeUpstreamOptions {
  port?: number;
  host?: string;
  /** Prefix stripped before routing, e.g. '/upstream' -> openaiBaseUrl = url + '/upstream/v1'. */
  pathPrefix?: string;
  answer?: string;
  deltaDelayMs?: number;
  /** OpenAI models that exist (others give 404 model_not_found). */
  models?: readonly string[];
  allowUnknownModels?: boolean;
  modelAliases?: Record<string, string>;
  /** Azure deployment -> model. */
  deployments?: Record<string, string>;
  /** Behaviour for keys without setKeyBehavior (default 'ok': every key is accepted). */
  defaultBehavior?: KeyBehaviorInput;
  /** Keep the request log (default true; turn off for benchmarks). */
  recordRequests?: boolean;
  organization?: string;
  project?: string;
  region?: string;
}

export interface FakeUpstream {
  readonly url: string;
  readonly openaiBaseUrl: string;
  /** Azure resource endpoint (url + prefix); the deployments and /openai/v1 routes hang below it. */
  readonly azureEndpoint: string;
  readonly host: string;
  readonly port: number;
  readonly requests: readonly RecordedRequest[];
  clearRequests(): void;
  /** `times`: the behaviour applies to the next N requests with this key, then the default returns. */
  setKeyBehavior(key: string, behavior: KeyBehaviorInput, opts?: { times?: number }): void;
  setDefaultBehavior(behavior: KeyBehaviorInput): void;
  clearKeyBehaviors(): void;
  setAnswer(text: string): void;
  setDeltaDelay(ms: number): void;
  setDeployment(deployment: string, model: string): void;
  holdStreams(): StreamLatch;
  waitForRequests(n: number): Promise<RecordedRequest[]>;
  /** Resolves with the n-th request (1-based) the client aborted. */
  waitForAbort(n?: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

export const DEFAULT_DEPLOYMENTS: Readonly<Record<string, string>> = {
  'gpt-4o': 'gpt-4o-2024-08-06',
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'gpt-35-turbo-instruct': 'gpt-35-turbo-instruct',
  'text-embedding-3-small': 'text-embedding-3-small',
};

export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const state: FakeState = {
    answer: opts.answer ?? DEFAULT_ANSWER,
    deltaDelayMs: opts.deltaDelayMs ?? 0,
    models: new Set(opts.models ?? DEFAULT_MODELS),
    allowUnknownModels: opts.allowUnknownModels ?? false,
    modelAliases: new Map(Object.entries(opts.modelAliases ?? {})),
    deployments: new Map(Object.entries(opts.deployments ?? DEFAULT_DEPLOYMENTS)),
    pathPrefix: (opts.pathPrefix ?? '').replace(/\/+$/, ''),
    organization: opts.organization ?? 'user-fakeupstream',
    project: opts.project ?? 'proj_FakeUpstream0000000000',
    region: opts.region ?? 'East US',
    behaviors: new Map(),
    defaultBehavior: toBehavior(opts.defaultBehavior ?? 'ok'),
    latch: undefined,
    record: opts.recordRequests ?? true,
    requests: [],
    seq: 0,
    waiters: new Waiters(),
    inflight: new Set(),
    closing: false,
  };
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    handleRequest(state, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  const aborted = (): RecordedRequest[] => state.requests.filter((r) => r.aborted);

  return {
    url,
    openaiBaseUrl: `${url}${state.pathPrefix}/v1`,
    azureEndpoint: `${url}${state.pathPrefix}`,
    host: address,
    port,
    get requests() {
      return state.requests;
    },
    clearRequests: () => {
      state.requests = [];
    },
    setKeyBehavior: (key, behavior, o) => {
      state.behaviors.set(key, { behavior: toBehavior(behavior), remaining: o?.times });
    },
    setDefaultBehavior: (behavior) => {
      state.defaultBehavior = toBehavior(behavior);
    },
    clearKeyBehaviors: () => state.behaviors.clear(),
    setAnswer: (text) => {
      state.answer = text;
    },
    setDeltaDelay: (ms) => {
      state.deltaDelayMs = ms;
    },
    setDeployment: (deployment, model) => {
      state.deployments.set(deployment, model);
    },
    holdStreams: () => {
      const latch = new Latch((l) => {
        if (state.latch === l) state.latch = undefined;
      });
      state.latch = latch;
      return latch;
    },
    waitForRequests: async (n) => {
      await state.waiters.until(() => state.requests.length >= n);
      return state.requests.slice(0, n);
    },
    waitForAbort: async (n = 1) => {
      await state.waiters.until(() => aborted().length >= n);
      const rec = aborted()[n - 1];
      if (rec === undefined) throw new Error('unreachable: aborted request missing');
      return rec;
    },
    close: () => {
      state.closing = true;
      state.latch?.release();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return Promise.all([closed, ...state.inflight]).then(() => {});
    },
  };
}
