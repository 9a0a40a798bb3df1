import type { AzureDeployment } from './deployments.ts';
import type { Operation, ProviderAdapter, UpstreamKey, UpstreamTarget } from './types.ts';

/**
 * Azure OpenAI: `api-key` auth against the key's resource endpoint. A dated AZURE_API_VERSION
 * uses the deployments path (`/openai/deployments/{d}/{op}?api-version=…`); `v1` uses Azure's
 * OpenAI-style `/openai/v1/{op}` surface, where the body's `model` names the deployment (and so
 * does `responses` with any version).
 */
export class AzureAdapter implements ProviderAdapter {
  readonly provider = 'azure' as const;
  readonly #apiVersion: string;
  readonly #streamOptions: boolean;

  constructor(apiVersion: string) {
    this.#apiVersion = apiVersion;
    // `stream_options` came with 2024-09-01-preview; the first GA version with it is 2024-10-21
    // (none came between). Dated versions compare as text.
    this.#streamOptions = apiVersion === 'v1' || apiVersion.slice(0, 10) >= STREAM_OPTIONS_SINCE;
  }

  servedModels(key: UpstreamKey): string[] {
    return (key.deployments ?? []).flatMap((d) => d.models);
  }

  target(
    operation: Operation,
    model: string | undefined,
    key: UpstreamKey,
    body: Buffer | undefined,
  ): UpstreamTarget | null {
    if (!key.endpoint) return null;
    const url = new URL(key.endpoint);
    const base = url.pathname.replace(/\/+$/, '');
    const headers = { 'api-key': key.secret };
    const v1 = this.#apiVersion === 'v1';
    const version = `api-version=${encodeURIComponent(this.#apiVersion)}`;
    if (operation === 'models') {
      return {
        origin: url.origin,
        path: v1 ? `${base}/openai/v1/models` : `${base}/openai/models?${version}`,
        headers,
      };
    }
    const deployment = model === undefined ? undefined : findDeployment(key.deployments ?? [], model);
    if (!deployment) return null;
    // The Responses API is served on the v1 surface only, whatever the dated version: dated GA
    // versions (2024-10-21, the default) predate it and have no such path.
    if (v1 || operation === 'responses') {
      return {
        origin: url.origin,
        path: `${base}/openai/v1/${operation}`,
        headers,
        body: withModel(body, deployment),
        deployment,
      };
    }
    const path = `${base}/openai/deployments/${encodeURIComponent(deployment)}/${operation}?${version}`;
    return this.#streamOptions
      ? { origin: url.origin, path, headers, deployment }
      : { origin: url.origin, path, headers, deployment, refusesStreamOptions: true };
  }
}

const STREAM_OPTIONS_SINCE = '2024-09-01';

/** The deployment serving `model`: one listing the model, else one named like it. */
export function findDeployment(deployments: readonly AzureDeployment[], model: string): string | undefined {
  return (
    deployments.find((d) => d.models.includes(model)) ?? deployments.find((d) => d.deployment === model)
  )?.deployment;
}

function withModel(body: Buffer | undefined, deployment: string): Buffer | undefined {
  if (!body) return undefined;
  const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  return json.model === deployment ? body : Buffer.from(JSON.stringify({ ...json, model: deployment }));
}
