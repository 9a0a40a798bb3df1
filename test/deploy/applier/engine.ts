/**
 * The Docker Engine API over the engine's unix socket, as @pulumi/docker's provider (the
 * Terraform docker provider inside) talks to it: container, network and volume objects are created
 * from JSON, so what the program declares reaches the engine field for field, with no command line
 * in between (and no secret in any process's arguments). Every call has a time limit; an error
 * names the method, the path and the engine's message, never a request body.
 */
import { request } from 'node:http';
import { ApplierRefusal } from './inputs.ts';

export interface EngineResponse {
  status: number;
  body: Buffer;
}

export interface CallOptions {
  body?: unknown;
  /** A raw body (a tar archive) instead of JSON. */
  raw?: Buffer;
  contentType?: string;
  timeoutMs?: number;
  /** Statuses that are answers rather than errors (e.g. 404 for "not there"). */
  accept?: number[];
}

export class Engine {
  readonly host: string;
  readonly socketPath: string;

  constructor(host: string) {
    if (!host.startsWith('unix://')) {
      throw new ApplierRefusal(`applier: docker host ${host}: only unix:// sockets are translated`);
    }
    this.host = host;
    this.socketPath = host.slice('unix://'.length);
  }

  call(method: string, path: string, options: CallOptions = {}): Promise<EngineResponse> {
    const { timeoutMs = 60_000, accept = [] } = options;
    const payload =
      options.raw ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
    const headers: Record<string, string> = {};
    if (payload) {
      headers['content-type'] = options.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks);
          if (status < 400 || accept.includes(status)) resolve({ status, body });
          else reject(new Error(`docker API ${method} ${path}: ${status} ${engineMessage(body)}`));
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`docker API ${method} ${path}: no answer in ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A call whose answer is JSON (or empty: undefined). */
  async json<T>(method: string, path: string, options: CallOptions = {}): Promise<T | undefined> {
    const { status, body } = await this.call(method, path, options);
    if (status === 204 || status === 304 || body.length === 0) return undefined;
    return JSON.parse(body.toString('utf8')) as T;
  }

  /** The last `lines` of a container's stdout and stderr (non-TTY log stream, demultiplexed). */
  async logTail(id: string, lines = 40): Promise<string> {
    const { body } = await this.call('GET', `/containers/${id}/logs?stdout=1&stderr=1&tail=${lines}`, {
      accept: [404],
    });
    const out: Buffer[] = [];
    for (let at = 0; at + 8 <= body.length; ) {
      const size = body.readUInt32BE(at + 4);
      out.push(body.subarray(at + 8, at + 8 + size));
      at += 8 + size;
    }
    return Buffer.concat(out).toString('utf8').trimEnd();
  }
}

function engineMessage(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { message?: string };
    return parsed.message ?? '';
  } catch {
    return body.toString('utf8').slice(0, 300);
  }
}

/** A path segment or query value, escaped. */
export function q(value: string): string {
  return encodeURIComponent(value);
}
