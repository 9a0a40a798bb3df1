import { Redis } from 'ioredis';
import type { Config } from '../config/index.ts';

/**
 * The Redis connection. Commands fail fast while Redis is unreachable (no offline queue, one
 * try) so callers can apply RATE_LIMIT_FAIL_OPEN at once instead of waiting; ioredis keeps
 * reconnecting in the background with capped backoff.
 */
export function createRedis(redis: Config['redis'], onError: (err: Error) => void): Redis {
  const options = {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 1_000,
    retryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, 2_000),
  };
  const client = redis.url
    ? new Redis(redis.url, options)
    : new Redis({ ...options, host: redis.host, port: redis.port, password: redis.password });
  // Without a listener ioredis prints errors itself (with the connection details): route them through our logger.
  client.on('error', onError);
  return client;
}
