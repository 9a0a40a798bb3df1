import type { Config } from '../config/index.ts';

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]*):([^\s/@]*)@/gi;
const BEARER = /\b(Bearer\s+)[^\s"',]+/gi;
const PROXY_KEY = /\bsk-[A-Za-z0-9_-]{16,}/g;

/**
 * Removes secrets from a text before it is logged or printed: every configured secret value,
 * credentials inside URLs (pg and ioredis errors can echo connection strings), bearer tokens and
 * anything shaped like an API key.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out
    .replace(URL_CREDENTIALS, '$1$2:[redacted]@')
    .replace(BEARER, '$1[redacted]')
    .replace(PROXY_KEY, '[redacted]');
}

/** Every secret value a loaded config holds, for `redact`. */
export function secretsOf(config: Partial<Config>): string[] {
  const values = [
    config.database?.password,
    config.database?.connectionString,
    config.redis?.password,
    config.redis?.url,
    config.encryption?.current,
    ...(config.encryption?.previous ?? []),
    ...(config.upstream?.openai.apiKeys ?? []),
    ...(config.upstream?.azure.apiKeys ?? []),
  ];
  return values.filter((v): v is string => typeof v === 'string' && v !== '');
}

/** A one-line, secret-free description of an error, with its errno code when it has one. */
export function describeError(err: unknown, secrets: readonly string[] = []): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0], secrets);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message || err.name;
    return redact(code && !message.includes(code) ? `${message} (${code})` : message, secrets);
  }
  return redact(String(err), secrets);
}
