import { Agent, get } from 'node:https';
import { createRequire } from 'node:module';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import type { Logger } from '../log/logger.ts';
import { NoResponseError, OrderError, parseRetryAfter } from './errors.ts';

/** The last rate-limit answer (429, or 503 with Retry-After) the CA gave during this order. */
export interface RateLimitSeen {
  retryAfterMs?: number;
  status: number;
}

let rateLimitSeen: RateLimitSeen | undefined;
let configured: Agent | undefined;

export function takeRateLimitSeen(): RateLimitSeen | undefined {
  const seen = rateLimitSeen;
  rateLimitSeen = undefined;
  return seen;
}

interface AcmeSettings {
  retryMaxAttempts: number;
}

type Adapter = Extract<NonNullable<typeof acme.axios.defaults.adapter>, (...args: never[]) => unknown>;

// acme-client's own copy of axios (not a dependency of ours), for its Node HTTP adapter.
const here = createRequire(import.meta.url);
const acmeAxios = createRequire(here.resolve('acme-client'))('axios') as {
  getAdapter(name: 'http'): Adapter;
};

/**
 * The HTTP adapter, with one change: a request that got no response throws a NoResponseError.
 * acme-client's retry interceptor reads `error.response.config`, so such a request (refused,
 * reset, timed out) otherwise comes out as "TypeError: Cannot read properties of undefined",
 * which says nothing of the cause; an error without `config` it passes on as it is. Its retries,
 * which would need `config`, are off anyway (below).
 */
function reportingNoResponse(http: Adapter): Adapter {
  return (config) =>
    http(config).catch((err: { response?: unknown; message?: string; code?: string }) => {
      if (err.response !== undefined) throw err; // an HTTP answer: acme-client deals with it
      throw new NoResponseError(err.message || 'no response', err.code);
    });
}

/**
 * Sets up acme-client's HTTP layer once per process (it is a module-wide axios instance):
 * trusts ACME_CA_FILE in addition to the system roots (the supported way, axios's `httpsAgent`),
 * bounds every request with a timeout, and turns off acme-client's own retries on 429/5xx: they
 * sleep for the CA's Retry-After inside the order, holding the lock for as long as the CA says
 * (hours, for Let's Encrypt). certd's scheduler does the waiting instead, persisted, and sees
 * the Retry-After through the interceptor below.
 */
export function configureAcmeHttp(caPem: string | undefined, logger: Logger, timeoutMs = 30_000): Agent {
  if (configured) return configured;
  const ca = caPem === undefined ? undefined : [...rootCertificates, caPem];
  const agent = new Agent({ ca, keepAlive: true, timeout: timeoutMs });
  acme.axios.defaults.httpsAgent = agent;
  acme.axios.defaults.timeout = timeoutMs;
  acme.axios.defaults.adapter = reportingNoResponse(acmeAxios.getAdapter('http'));
  (acme.axios.defaults as unknown as { acmeSettings: AcmeSettings }).acmeSettings.retryMaxAttempts = 0;
  acme.axios.interceptors.response.use((response) => {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
    if (response.status === 429 || (response.status === 503 && retryAfterMs !== undefined)) {
      rateLimitSeen = { status: response.status, retryAfterMs };
    }
    return response;
  });
  acme.setLogger((message) => logger.trace({ acme: message }, 'acme-client'));
  configured = agent;
  return agent;
}

/**
 * Reads the ACME directory before anything else, so an unreachable CA is reported as such
 * (refused, DNS, TLS trust) rather than as whatever acme-client makes of a missing response.
 */
export function probeDirectory(url: string, agent: Agent, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      if (status === 200) return resolve();
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      if (status === 429 || (status === 503 && retryAfterMs !== undefined)) {
        reject(new OrderError('rate_limited', `directory: the CA answered ${status}`, retryAfterMs));
      } else {
        reject(new OrderError('ca_error', `directory: the CA answered ${status} for ${url}`));
      }
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code && !err.message.includes(err.code) ? ` (${err.code})` : '';
      reject(new OrderError('unreachable', `cannot reach the CA at ${url}: ${err.message}${code}`));
    });
  });
}
