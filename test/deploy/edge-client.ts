/**
 * A client of the deployed appliance as its users see it: HTTPS to the port nginx publishes on
 * 127.0.0.1, with the domain as SNI and Host, trusting only pebble's root (so a response at all
 * means nginx serves the certificate pebble issued for the domain). Streams are read as they
 * arrive, each server-sent event stamped with its arrival time.
 */
import { request } from 'node:https';

export interface Edge {
  port: number;
  domain: string;
  /** The only root trusted. */
  ca: string;
}

export interface EdgeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface StreamedEvent {
  /** Milliseconds since the request was sent. */
  at: number;
  data: string;
}

export interface EdgeCall {
  method?: string;
  path: string;
  apiKey?: string;
  body?: unknown;
  timeoutMs?: number;
  /** Called with every complete event as soon as it arrives. */
  onEvent?: (event: StreamedEvent) => void;
}

/** One request to the appliance's HTTPS port. */
export function callEdge(edge: Edge, call: EdgeCall): Promise<EdgeResponse> {
  const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
  const headers: Record<string, string> = { host: edge.domain };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (call.apiKey) headers.authorization = `Bearer ${call.apiKey}`;
  const sent = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: edge.port,
        servername: edge.domain,
        ca: edge.ca,
        method: call.method ?? (payload === undefined ? 'GET' : 'POST'),
        path: call.path,
        headers,
        agent: false,
        timeout: call.timeoutMs ?? 30_000,
      },
      (res) => {
        let body = '';
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          if (!call.onEvent) return;
          pending += chunk;
          const events = pending.split('\n\n');
          pending = events.pop() ?? '';
          for (const event of events) {
            const data = event
              .split('\n')
              .filter((line) => line.startsWith('data:'))
              .map((line) => line.slice(5).trim())
              .join('\n');
            if (data !== '') call.onEvent({ at: performance.now() - sent, data });
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer from ${call.path} in time`)));
    req.once('error', reject);
    req.end(payload);
  });
}

/** A chat completion request body (streamed or not). */
export function chatBody(stream: boolean): Record<string, unknown> {
  return {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello through the whole appliance.' }],
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  };
}
