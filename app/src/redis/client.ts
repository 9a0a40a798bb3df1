import { Redis } from 'ioredis';
import type { Config } from '../config/index.ts';

/**
 * The Redis connection. Commands fail fast while Redis is unreachable (no offline queue, one
 * try) so callers can apply RATE_LIMIT_FAIL_OPEN at once instead of waiting; ioredis keeps
 * reconnecting in the background with capped backoff.
 *
 * A Redis that stops answering without closing the connection (paused, its host stalled, packets
 * dropped) is dropped after socketTimeout: commandTimeout fails each caller after 1 s, but ioredis
 * would keep every command (and its bytes) queued for as long as the socket stays open, and never
 * reconnect. Commands cut off so are not sent again after the reconnect: each caller has given up
 * by then (commandTimeout) and handles the failure itself (a settlement is retried under its own
 * id), while a rate-limit check sent again would charge its key a second time.
 */
export function createRedis(redis: Config['redis'], onError: (err: Error) => void): Redis {
  const options = {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 1_000,
    socketTimeout: 2_000,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, 2_000),
  };
  const client = redis.url
    ? new Redis(redis.url, options)
    : new Redis({ ...options, host: redis.host, port: redis.port, password: redis.password });
  // Without a listener ioredis prints errors itself (with the connection details): route them through our logger.
  client.on('error', onError);
  return client;
}
