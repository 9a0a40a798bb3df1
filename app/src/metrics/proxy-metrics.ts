import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Latency buckets, in seconds: up to the failover budget (330 s, a 504 at the deadline) and past it,
 * as a stream's duration is bounded only by the upstream's silence between chunks.
 */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 330, 600];

/**
 * The proxy's own metrics. The model label is bounded by `modelLabel` to the models the
 * upstream keys serve (anything else is `other`), so a client cannot grow the series count by
 * inventing model names.
 */
export function createProxyMetrics(registry: Registry) {
  const registers = [registry];
  let keyStates: () => Array<{ provider: string; state: string }> = () => [];
  return {
    /** Tells the key-state gauge where to read the pool's current states at scrape time. */
    setKeyStateSource(source: typeof keyStates): void {
      keyStates = source;
    },
    requests: new Counter({
      name: 'gpt_proxy_requests_total',
      help: 'Requests answered, by route, status code and model.',
      labelNames: ['route', 'status', 'model'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'gpt_proxy_request_duration_seconds',
      help: 'Time from request to the end of the response (whole stream included), by route.',
      labelNames: ['route', 'stream'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    firstByte: new Histogram({
      name: 'gpt_proxy_time_to_first_byte_seconds',
      help: "Time from request to the upstream's answer going out to the client (a stream's headers and first events; a JSON answer whole), by route.",
      labelNames: ['route', 'stream'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    streamsInterrupted: new Counter({
      name: 'gpt_proxy_streams_interrupted_total',
      help: 'Streams the upstream broke off after the client got its 200 (counted there as a success), by route.',
      labelNames: ['route'] as const,
      registers,
    }),
    upstreamAttempts: new Counter({
      name: 'gpt_proxy_upstream_attempts_total',
      help: 'Upstream attempts by provider and outcome (success, client_error, model_refused, key_disabled, key_cooling, upstream_failure).',
      labelNames: ['provider', 'outcome'] as const,
      registers,
    }),
    upstreamKeys: new Gauge({
      name: 'gpt_proxy_upstream_keys',
      help: 'Upstream keys (all but retired) by provider and state as this instance sees them; a cooling key whose time is up counts as active.',
      labelNames: ['provider', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const state of ['active', 'cooling', 'disabled']) {
          for (const provider of ['openai', 'azure']) this.set({ provider, state }, 0);
        }
        for (const k of keyStates()) this.inc({ provider: k.provider, state: k.state });
      },
    }),
    tokens: new Counter({
      name: 'gpt_proxy_tokens_total',
      help: 'Tokens used, by model, proxy key id and kind (prompt or completion).',
      labelNames: ['model', 'key_id', 'kind'] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: 'gpt_proxy_ratelimit_rejections_total',
      help: 'Requests refused with 429, by the limit that refused them (requests or tokens).',
      labelNames: ['type'] as const,
      registers,
    }),
    failOpen: new Counter({
      name: 'gpt_proxy_ratelimit_fail_open_total',
      help: 'Requests served without a rate-limit check because Redis was unreachable (RATE_LIMIT_FAIL_OPEN=true).',
      registers,
    }),
    usageBuffer: new Gauge({
      name: 'gpt_proxy_usage_buffer_rows',
      help: 'Usage rows waiting to be written to Postgres.',
      registers,
    }),
    usageWritten: new Counter({
      name: 'gpt_proxy_usage_rows_written_total',
      help: 'Usage rows written.',
      registers,
    }),
    usageDropped: new Counter({
      name: 'gpt_proxy_usage_rows_dropped_total',
      help: 'Usage rows dropped: the buffer was full while Postgres was unreachable, Postgres refused the row, or the shutdown could not write it.',
      registers,
    }),
    usageWriteFailures: new Counter({
      name: 'gpt_proxy_usage_write_failures_total',
      help: 'Failed attempts to write a batch of usage rows (they are retried).',
      registers,
    }),
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
