import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { ApiError, ClientGoneError } from '../../errors.ts';

/** A request body read once: the exact bytes (forwarded untouched) and their JSON parse. */
export interface JsonBody {
  raw: Buffer;
  json: Record<string, unknown>;
}

/**
 * Reads the request body up to `limit` bytes and parses it as a JSON object. Refuses early on a
 * declared Content-Length over the limit, so a huge upload is not read just to be rejected.
 */
export async function readJsonBody(ctx: Context, limit: number): Promise<JsonBody> {
  if (!isJson(ctx.get('content-type'))) {
    throw new ApiError(
      'unsupported_media_type',
      `Content-Type must be application/json, not ${ctx.get('content-type') || 'missing'}.`,
    );
  }
  const tooLarge = () =>
    new ApiError(
      'request_too_large',
      `The request body is larger than the ${limit} bytes this server accepts.`,
    );
  const declared = Number(ctx.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();

  const raw = await readBody(ctx.req, limit, tooLarge);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ApiError('invalid_request', 'The request body is not valid JSON.');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ApiError('invalid_request', 'The request body must be a JSON object.');
  }
  return { raw, json: json as Record<string, unknown> };
}

/** The body's bytes, up to `limit` (events rather than an async iterator: cheaper per request). */
function readBody(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    // The request stream fails only when its connection does: the client is gone either way.
    const onError = () => {
      done();
      reject(new ClientGoneError());
    };
    const onClose = () => {
      if (!req.complete) onError();
    };
    const done = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/** `application/json` or any `+json` type, parameters (charset) aside. */
function isJson(contentType: string): boolean {
  const semicolon = contentType.indexOf(';');
  const type = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json' || (type.endsWith('+json') && type.includes('/'));
}
