import type { Context } from 'koa';
import { type ApiKeyIdentity, mayUseModel } from '../../auth/api-key-auth.ts';
import type { ModelCatalog, ModelEntry } from '../../upstream/model-catalog.ts';
import { enforceLimits, type LimitDeps } from '../limits.ts';

/** `GET /v1/models`: what the upstream keys serve, narrowed to what this key may use. Counts as a request. */
export function modelsRoute(catalog: ModelCatalog, limits: LimitDeps) {
  return async (ctx: Context) => {
    await enforceLimits(ctx, limits, 0);
    const key = ctx.state.apiKey as ApiKeyIdentity;
    const abort = new AbortController();
    ctx.res.once('close', () => abort.abort());
    let models: ModelEntry[];
    try {
      models = await catalog.list(abort.signal);
    } catch (err) {
      // The client left: nothing to answer, and no error (logged as 499, as the proxy routes do).
      if (!abort.signal.aborted) throw err;
      ctx.state.clientGone = true;
      ctx.respond = false;
      return;
    }
    ctx.body = { object: 'list', data: models.filter((m) => mayUseModel(key, m.id)) };
  };
}
