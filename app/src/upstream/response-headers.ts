import type { IncomingHttpHeaders } from 'node:http';

// Only these upstream headers reach the client. Everything else — the upstream's own rate-limit
// counters (they describe our key, not theirs), openai-organization/-project, set-cookie,
// hop-by-hop and CDN headers — stays behind. A list of what may pass is stricter than a list of
// what may not.
const PASSED = ['content-type', 'openai-processing-ms', 'openai-version', 'openai-model'] as const;

/** The headers to send the client for an upstream response; the upstream's request id is kept under its own name. */
export function clientHeaders(upstream: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED) {
    const value = upstream[name];
    if (typeof value === 'string') out[name] = value;
  }
  const upstreamId = upstream['x-request-id'] ?? upstream['apim-request-id'];
  if (typeof upstreamId === 'string') out['x-upstream-request-id'] = upstreamId;
  return out;
}

/** True when the upstream answered with an event stream. */
export function isEventStream(upstream: IncomingHttpHeaders): boolean {
  return /^text\/event-stream\b/i.test(String(upstream['content-type'] ?? ''));
}
