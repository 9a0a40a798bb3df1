import type { Operation, ProviderAdapter, UpstreamKey, UpstreamTarget } from './types.ts';

/** OpenAI (or any OpenAI-compatible server at OPENAI_BASE_URL): Bearer auth, paths under the base URL. */
export class OpenAiAdapter implements ProviderAdapter {
  readonly provider = 'openai' as const;
  readonly #origin: string;
  readonly #basePath: string;

  constructor(baseUrl: string) {
    const url = new URL(baseUrl);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
  }

  servedModels(): null {
    return null;
  }

  target(operation: Operation, _model: string | undefined, key: UpstreamKey): UpstreamTarget {
    return {
      origin: this.#origin,
      path: `${this.#basePath}/${operation}`,
      headers: { authorization: `Bearer ${key.secret}` },
    };
  }
}
