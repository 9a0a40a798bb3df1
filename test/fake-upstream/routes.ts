// Routing and gateway checks: OpenAI (/v1), Azure's dated surface (/openai/deployments/{d}, /openai/models),
// Azure v1 (/openai/v1).
import type { IncomingMessage } from 'node:http';
import type { Endpoint, Surface } from './control.ts';
import { azureErrors, type ErrorReply, openaiErrors } from './errors.ts';

export interface Route {
  surface: Surface;
  endpoint: Endpoint | undefined;
  method: string;
  deployment: string | undefined;
  modelId: string | undefined;
}

const POST_ENDPOINTS: Record<string, Endpoint> = {
  '/chat/completions': 'chat',
  '/completions': 'completions',
  '/embeddings': 'embeddings',
  '/responses': 'responses',
};

export function matchRoute(path: string): Route {
  const route: Route = {
    surface: 'openai',
    endpoint: undefined,
    method: 'POST',
    deployment: undefined,
    modelId: undefined,
  };
  let sub: string;
  // Azure's "Models - List" on the dated surface: the resource's models, `?api-version=` required.
  if (path === '/openai/models') {
    return { ...route, surface: 'azure-deployments', endpoint: 'models', method: 'GET' };
  }
  const dep = /^\/openai\/deployments\/([^/]+)(\/.*)$/.exec(path);
  if (dep?.[1] !== undefined && dep[2] !== undefined) {
    route.surface = 'azure-deployments';
    route.deployment = decodeURIComponent(dep[1]);
    sub = dep[2];
  } else if (path.startsWith('/openai/v1/')) {
    route.surface = 'azure-v1';
    sub = path.slice('/openai/v1'.length);
  } else if (path.startsWith('/v1/')) {
    sub = path.slice('/v1'.length);
  } else {
    if (path.startsWith('/openai/')) route.surface = 'azure-v1';
    return route;
  }
  const post = POST_ENDPOINTS[sub];
  if (post !== undefined && !(route.surface === 'azure-deployments' && post === 'responses'))
    route.endpoint = post;
  else if (route.surface !== 'azure-deployments' && sub === '/models') {
    route.endpoint = 'models';
    route.method = 'GET';
  } else if (route.surface !== 'azure-deployments' && sub.startsWith('/models/') && sub.length > 8) {
    route.endpoint = 'model';
    route.method = 'GET';
    route.modelId = decodeURIComponent(sub.slice(8));
  }
  return route;
}

/** OpenAI reads only `Authorization: Bearer`; Azure reads `api-key`, else Bearer (Entra-style). */
export function extractKey(req: IncomingMessage, surface: Surface): string | undefined {
  const apiKey = req.headers['api-key'];
  if (surface !== 'openai' && typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1]?.trim();
}

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

/** Gateway-level checks (route, api-version, key); returns the error to send, if any. */
export function gatewayError(
  route: Route,
  method: string,
  path: string,
  query: URLSearchParams,
  key: string | undefined,
): ErrorReply | undefined {
  const azure = route.surface !== 'openai';
  if (route.endpoint === undefined)
    return azure ? azureErrors.resourceNotFound() : openaiErrors.invalidUrl(method, path);
  if (method !== route.method)
    return azure ? azureErrors.resourceNotFound() : openaiErrors.invalidMethod(method, path);
  const version = query.get('api-version');
  if (route.surface === 'azure-deployments') {
    if (version === null || version === '') return azureErrors.resourceNotFound();
    if (!API_VERSION.test(version)) return azureErrors.apiVersionNotSupported();
  }
  if (route.surface === 'azure-v1' && version !== null && !['v1', 'preview', 'latest'].includes(version)) {
    return azureErrors.apiVersionNotAllowedOnV1();
  }
  if (key === undefined) return azure ? azureErrors.missingKey() : openaiErrors.missingKey();
  return undefined;
}
