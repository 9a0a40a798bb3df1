import type { Context } from 'koa';
import { type ApiKeyIdentity, mayUseModel } from '../../auth/api-key-auth.ts';
import { ClientGoneError } from '../../errors.ts';
import type { ModelCatalog } from '../../upstream/model-catalog.ts';
import { enforceLimits, type LimitDeps } from '../limits.ts';
import { followClient } from '../relay.ts';

/** `GET /v1/models`: what the upstream keys serve, narrowed to what this key may use. Counts as a request. */
export function modelsRoute(catalog: ModelCatalog, limits: LimitDeps) {
  return async (ctx: Context) => {
    await enforceLimits(ctx, limits, 0);
    const key = ctx.state.apiKey as ApiKeyIdentity;
    const abort = new AbortController();
    // The wait for the list ends with the client's leaving, recorded as 499 (see clientGone).
    const onClose = followClient(ctx.res, abort, () => new ClientGoneError());
    try {
      const models = await catalog.list(abort.signal);
      ctx.body = { object: 'list', data: models.filter((m) => mayUseModel(key, m.id)) };
    } finally {
      if (onClose) ctx.res.off('close', onClose);
    }
  };
}
