import { parseReset } from '../ratelimit/reset-format.ts';
import type { Provider } from './types.ts';

/**
 * What an upstream answer means for the key that got it and for the client. Pure: the pool and
 * the forwarder act on the result; the table tests pin every case.
 */
export type Outcome =
  | { kind: 'success' }
  /** The client's mistake as the upstream judged it (400/404/422…): sent back unchanged, key untouched. */
  | { kind: 'client_error' }
  /**
   * A 403 refusing the model, not the key (see `modelScoped`): the next key, of another project,
   * may serve it, so it is tried, and this one is left as it is. Relayed when every key refuses.
   * `deploymentMissing`: Azure's 404 DeploymentNotFound, the key's resource lacks the deployment
   * the proxy's own configuration named (see `classifyAnswer`); worth telling the operator.
   */
  | { kind: 'model_refused'; deploymentMissing?: true }
  /** The key is unusable until a probe shows otherwise (401, 403, exhausted quota). */
  | { kind: 'key_disabled'; reason: string }
  /** The key is rate limited: rest it until the upstream says, then use it again. */
  | { kind: 'key_cooling'; retryAfterMs: number; reason: string }
  /** A fault on the upstream's side or the way there: retry elsewhere, count against the key. */
  | { kind: 'upstream_failure'; reason: string; timeout: boolean };

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The error body's text (may be truncated); absent for 2xx. */
  body?: string;
  /** The key's provider: some answers mean something else from Azure. */
  provider?: Provider;
}

/** The reason a key out of quota is disabled with: its probes are spaced further apart. */
export const QUOTA_REASON = 'insufficient_quota';

const DEFAULT_COOLDOWN_MS = 20_000;
const MAX_COOLDOWN_MS = 10 * 60_000;

/**
 * An upstream's error code as it may be stored (`last_error`) and shown: at most 100 characters,
 * control characters replaced (Postgres text cannot hold NUL, and logs and terminals should not
 * get the others). OpenAI's and Azure's codes are short identifiers; this is for the upstream
 * that is neither.
 */
function tame(code: string): string {
  return code.slice(0, 100).replace(/\p{Cc}/gu, '?');
}

/** The error code and message in OpenAI's or Azure's error body, when there are any. */
export function errorInfo(body: string | undefined): { code?: string; message?: string } {
  if (!body) return {};
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; type?: unknown; message?: unknown } };
    const code = parsed.error?.code ?? parsed.error?.type;
    const message = parsed.error?.message;
    return {
      code: typeof code === 'string' || typeof code === 'number' ? tame(String(code)) : undefined,
      message: typeof message === 'string' ? message : undefined,
    };
  } catch {
    return {};
  }
}

function header(headers: UpstreamAnswer['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * How long the upstream asks us to wait: Azure's `retry-after-ms`, else `retry-after` in seconds
 * or as an HTTP date, else (some real 429s carry neither) when OpenAI says the exhausted limit
 * resets; a default when none is there, capped so a bogus header cannot bench a key for days.
 */
export function retryAfterMs(headers: UpstreamAnswer['headers'], now = Date.now()): number {
  const ms = Number(header(headers, 'retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return Math.min(ms, MAX_COOLDOWN_MS);
  const raw = header(headers, 'retry-after');
  if (raw !== undefined) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return bounded(seconds * 1000);
    const date = Date.parse(raw);
    if (Number.isFinite(date)) return bounded(date - now);
  }
  const reset = exhaustedReset(headers);
  return reset === undefined ? DEFAULT_COOLDOWN_MS : bounded(reset);
}

/** A wait the upstream gave in whole seconds or less precisely: at least 1 s, at most the cap. */
const bounded = (ms: number): number => Math.min(Math.max(ms, 1000), MAX_COOLDOWN_MS);

/**
 * When the limit a 429 exhausted resets: OpenAI's `x-ratelimit-reset-requests` or `-tokens`
 * (`120ms`, `6m0s`) of the limit whose `remaining` is 0 (or below); when neither or both are, the
 * later of the two, so the key is not used again before the limit that refused it allows.
 */
function exhaustedReset(headers: UpstreamAnswer['headers']): number | undefined {
  let any: number | undefined;
  let exhausted: number | undefined;
  for (const limit of ['requests', 'tokens']) {
    const reset = parseReset(header(headers, `x-ratelimit-reset-${limit}`) ?? '');
    if (reset === undefined) continue;
    any = Math.max(any ?? 0, reset);
    if (Number.parseFloat(header(headers, `x-ratelimit-remaining-${limit}`) ?? '') <= 0) {
      exhausted = Math.max(exhausted ?? 0, reset);
    }
  }
  return exhausted ?? any;
}

/**
 * A 403 that refuses the model, not the key: OpenAI's `model_not_found` when the key's project may
 * not use that model ("Project `proj_…` does not have access to model `gpt-4.1`"), and its refusal
 * of a model that needs a verified organization. The key still serves every other model, so it
 * must not be disabled for everyone; keys from other projects may serve this one. The other
 * 403s (a region not supported, key auth disabled on an Azure resource, its network rules, its
 * quota) refuse the key whatever the model, and disable it.
 */
function modelScoped(code: string | undefined, message: string | undefined): boolean {
  return code === 'model_not_found' || /\bmust be verified to use the model\b/i.test(message ?? '');
}

/** Classifies one upstream HTTP answer. */
export function classifyAnswer(answer: UpstreamAnswer): Outcome {
  const { status } = answer;
  if (status >= 200 && status < 300) return { kind: 'success' };
  const { code, message } = errorInfo(answer.body);
  // OpenAI says insufficient_quota (429); Azure says 403 "Out of call volume quota".
  if (code === 'insufficient_quota' || (status === 403 && /\bquota\b/i.test(message ?? ''))) {
    return { kind: 'key_disabled', reason: QUOTA_REASON };
  }
  if (status === 403 && modelScoped(code, message)) return { kind: 'model_refused' };
  // On Azure the deployment in the path (or, on the v1 surface, the body's model) comes from the
  // key's own configuration, never from the client: a 404 DeploymentNotFound says this key's
  // resource lacks it (deleted, renamed, or created under 5 minutes ago), not that the client
  // erred. Another resource may have it; this key still serves its other deployments.
  if (status === 404 && answer.provider === 'azure' && code === 'DeploymentNotFound') {
    return { kind: 'model_refused', deploymentMissing: true };
  }
  if (status === 401 || status === 403) {
    return {
      kind: 'key_disabled',
      reason: code && code !== String(status) ? `${status} ${code}` : `${status} unauthorized`,
    };
  }
  if (status === 429) {
    return {
      kind: 'key_cooling',
      retryAfterMs: retryAfterMs(answer.headers),
      reason: `429 ${code ?? 'rate_limited'}`,
    };
  }
  if (status === 408 || status >= 500) {
    return { kind: 'upstream_failure', reason: `${status}${code ? ` ${code}` : ''}`, timeout: false };
  }
  return { kind: 'client_error' };
}

/** Classifies a request that got no HTTP answer (refused, reset, timed out). */
export function classifyTransportError(err: unknown): Outcome {
  const code = (err as { code?: string }).code ?? (err instanceof Error ? err.name : 'error');
  const timeout = /TIMEOUT/i.test(code);
  return { kind: 'upstream_failure', reason: timeout ? `timeout (${code})` : `network (${code})`, timeout };
}
