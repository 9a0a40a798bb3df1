import type { Context } from 'koa';
import { ApiError } from '../../errors.ts';

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
  if (!ctx.is('application/json', '+json')) {
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

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
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
