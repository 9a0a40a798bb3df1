import type { AzureDeployment } from './deployments.ts';

export type Provider = 'openai' | 'azure';

/** The upstream operations the proxy forwards, named by their OpenAI path under /v1. */
export type Operation = 'chat/completions' | 'completions' | 'embeddings' | 'responses' | 'models';

/** An upstream key ready for use: decrypted in memory only, never logged. */
export interface UpstreamKey {
  id: number;
  provider: Provider;
  secret: string;
  /** Azure resource endpoint; null for OpenAI (OPENAI_BASE_URL applies). */
  endpoint: string | null;
  deployments: readonly AzureDeployment[] | null;
}

/** Where and how to send one request with one key. */
export interface UpstreamTarget {
  origin: string;
  path: string;
  headers: Record<string, string>;
  /** The body to send when the provider needs it changed (e.g. Azure v1 names the deployment as model). */
  body?: Buffer;
  /** Azure: the deployment the request goes to (from the key's configuration), for the operator's log. */
  deployment?: string;
  /**
   * The upstream refuses `stream_options` (Azure API versions before 2024-09-01-preview answer 400
   * "Unrecognized request argument"): it gets the client's body without the usage request the
   * proxy added.
   */
  refusesStreamOptions?: true;
}

/** Builds requests for one provider: OpenAI and Azure differ only in URL, auth header and version. */
export interface ProviderAdapter {
  readonly provider: Provider;
  /** The models this key can serve, or null when only the upstream knows (OpenAI: ask GET /models). */
  servedModels(key: UpstreamKey): string[] | null;
  /** The request for `operation` on `model` with `key`, or null when this key cannot serve the model. */
  target(
    operation: Operation,
    model: string | undefined,
    key: UpstreamKey,
    body: Buffer | undefined,
  ): UpstreamTarget | null;
}
