import { request } from 'node:http';

export interface SseResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Resolves with the next complete event (text without the blank line), or null at the end. */
  next(): Promise<string | null>;
  /** Every remaining event until the stream ends. */
  rest(): Promise<string[]>;
  /** Closes the connection from the client side. */
  abort(): void;
}

/**
 * A raw streaming client over node:http: exposes each server-sent event as soon as its bytes
 * arrive, so tests can assert that an event came through before the upstream sent the rest.
 */
export function openSse(url: string, headers: Record<string, string>, body: unknown): Promise<SseResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let buffer = '';
        const events: string[] = [];
        let ended = false;
        let wake: (() => void) | undefined;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          const parts = buffer.split('\n\n');
          buffer = parts.pop() ?? '';
          events.push(...parts.filter((p) => p !== ''));
          wake?.();
        });
        const finish = () => {
          ended = true;
          wake?.();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
        const next = async (): Promise<string | null> => {
          while (events.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
          return events.shift() ?? null;
        };
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          next,
          async rest() {
            const all: string[] = [];
            for (let e = await next(); e !== null; e = await next()) all.push(e);
            return all;
          },
          abort: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
