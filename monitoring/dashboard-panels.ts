// What the Grafana dashboard shows, row by row: the questions an operator asks (is it serving, how
// fast, what fails, who spends the tokens, are the keys, Postgres, Redis and the certificate fine),
// each a PromQL query. dashboard.ts turns this into Grafana's JSON model. Every metric named here
// is checked against a scrape of a running proxy, certd and nginx exporter (see the tests).

export interface Query {
  expr: string;
  legend?: string;
  /** One value per series at the end of the range (stat, bar gauge and table panels). */
  instant?: boolean;
}

export interface PanelSpec {
  title: string;
  description: string;
  type: 'timeseries' | 'stat' | 'bargauge' | 'table';
  /** Width in Grafana's 24 columns. */
  w: number;
  h?: number;
  unit?: string;
  queries: Query[];
  /** Colour steps from the lowest up: [value the colour starts at (null: lowest), colour]. */
  thresholds?: [number | null, string][];
  /** Value → text (stat panels showing states). */
  mappings?: Record<string, { text: string; color: string }>;
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

const API = 'route!~"/health.*"';
const UP_DOWN = { '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } };

export const ROWS: RowSpec[] = [
  {
    title: 'Traffic',
    panels: [
      {
        title: 'Requests per second by route',
        description: 'Answered requests (health checks left out), by the route that served them.',
        type: 'timeseries',
        w: 12,
        unit: 'reqps',
        queries: [
          {
            expr: `sum by (route) (rate(gpt_proxy_requests_total{${API}}[$__rate_interval]))`,
            legend: '{{route}}',
          },
        ],
      },
      {
        title: 'Responses by status',
        description: 'Answered requests by HTTP status (499: the client hung up).',
        type: 'timeseries',
        w: 12,
        unit: 'reqps',
        queries: [
          {
            expr: `sum by (status) (rate(gpt_proxy_requests_total{${API}}[$__rate_interval]))`,
            legend: '{{status}}',
          },
        ],
      },
      {
        title: 'Latency (whole response, streams included)',
        description: 'Quantiles of the time from request to the last byte, over all API routes.',
        type: 'timeseries',
        w: 8,
        unit: 's',
        queries: [0.5, 0.95, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le) (rate(gpt_proxy_request_duration_seconds_bucket{${API}}[$__rate_interval])))`,
          legend: `p${q * 100}`,
        })),
      },
      {
        title: 'p95 latency by route',
        description: 'Streamed and non-streamed answers apart: a stream lasts as long as the completion.',
        type: 'timeseries',
        w: 8,
        unit: 's',
        queries: [
          {
            expr: `histogram_quantile(0.95, sum by (le, route, stream) (rate(gpt_proxy_request_duration_seconds_bucket{${API}}[$__rate_interval])))`,
            legend: '{{route}} stream={{stream}}',
          },
        ],
      },
      {
        title: 'Time to first byte',
        description:
          "From request to the upstream's answer going out: for a stream its first events, the wait a user feels; for JSON, the whole answer.",
        type: 'timeseries',
        w: 8,
        unit: 's',
        queries: [0.5, 0.95].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le, stream) (rate(gpt_proxy_time_to_first_byte_seconds_bucket[$__rate_interval])))`,
          legend: `p${q * 100} stream={{stream}}`,
        })),
      },
    ],
  },
  {
    title: 'Errors and limits',
    panels: [
      {
        title: 'Error share of API requests',
        description:
          '5xx: the appliance or the upstream failed (alert above 5%). 4xx: the client was refused.',
        type: 'timeseries',
        w: 6,
        unit: 'percentunit',
        queries: ['5', '4'].map((c) => ({
          expr: `sum(rate(gpt_proxy_requests_total{status=~"${c}..", ${API}}[$__rate_interval])) / sum(rate(gpt_proxy_requests_total{${API}}[$__rate_interval]))`,
          legend: `${c}xx`,
        })),
      },
      {
        title: 'Upstream attempts by outcome',
        description:
          'Each try on an upstream key: success, client_error, model_refused, key_cooling, key_disabled, upstream_failure.',
        type: 'timeseries',
        w: 6,
        unit: 'ops',
        queries: [
          {
            expr: 'sum by (provider, outcome) (rate(gpt_proxy_upstream_attempts_total[$__rate_interval]))',
            legend: '{{provider}} {{outcome}}',
          },
        ],
      },
      {
        title: 'Streams broken off by the upstream',
        description:
          'Streams that failed after their 200 went out (they end with an error event), by route: a success to the other panels. Alert above 5% of streams.',
        type: 'timeseries',
        w: 6,
        unit: 'reqps',
        queries: [
          {
            expr: 'sum by (route) (rate(gpt_proxy_streams_interrupted_total[$__rate_interval]))',
            legend: '{{route}}',
          },
        ],
      },
      {
        title: 'Rate-limit rejections',
        description:
          '429s by the limit that refused them, and requests served unchecked while Redis was down.',
        type: 'timeseries',
        w: 6,
        unit: 'reqps',
        queries: [
          {
            expr: 'sum by (type) (rate(gpt_proxy_ratelimit_rejections_total[$__rate_interval]))',
            legend: '429 {{type}}',
          },
          {
            expr: 'sum(rate(gpt_proxy_ratelimit_fail_open_total[$__rate_interval]))',
            legend: 'served unchecked (Redis down)',
          },
        ],
      },
    ],
  },
  {
    title: 'Tokens',
    panels: [
      {
        title: 'Tokens per second by model',
        description:
          'Prompt and completion tokens as the upstream reported them (estimated when it did not).',
        type: 'timeseries',
        w: 12,
        unit: 'short',
        queries: [
          {
            expr: 'sum by (model, kind) (rate(gpt_proxy_tokens_total[$__rate_interval]))',
            legend: '{{model}} {{kind}}',
          },
        ],
      },
      {
        title: 'Tokens by proxy key (time range shown)',
        description: 'The 15 proxy keys (by id, see GET /admin/v1/keys) that used the most tokens.',
        type: 'bargauge',
        w: 12,
        unit: 'short',
        queries: [
          {
            expr: 'topk(15, sum by (key_id) (increase(gpt_proxy_tokens_total[$__range])))',
            legend: 'key {{key_id}}',
            instant: true,
          },
        ],
      },
    ],
  },
  {
    title: 'Upstream keys and dependencies',
    panels: [
      {
        title: 'Upstream keys by state',
        description:
          'Keys (retired ones left out) by state, as each replica sees them (they may differ for a few seconds after a change); a provider with no key is left out. Alert when none is active.',
        type: 'stat',
        w: 10,
        unit: 'short',
        queries: [
          {
            // Per replica: each counts every key once, but not always in the same state (a cooldown
            // ends on one replica's clock first, a change reaches each at its next refresh), so a
            // max or sum over replicas per state can add up to more keys than exist.
            expr: 'sum by (instance, provider, state) (gpt_proxy_upstream_keys) and on (instance, provider) (sum by (instance, provider) (gpt_proxy_upstream_keys) > 0)',
            legend: '{{instance}} {{provider}} {{state}}',
          },
        ],
      },
      {
        title: 'Postgres and Redis',
        description: 'Whether every proxy replica reaches them (the checks of GET /health).',
        type: 'stat',
        w: 7,
        queries: [{ expr: 'min by (service) (gpt_proxy_dependency_up)', legend: '{{service}}' }],
        mappings: UP_DOWN,
        thresholds: [
          [null, 'red'],
          [1, 'green'],
        ],
      },
      {
        title: 'Scrape targets answering',
        description: 'Proxy replicas, certd and the nginx exporter that answered the last scrape.',
        type: 'stat',
        w: 7,
        unit: 'short',
        queries: [
          { expr: 'sum by (job) (up{job=~"gpt-proxy-app|gpt-proxy-certd|nginx"})', legend: '{{job}}' },
        ],
      },
    ],
  },
  {
    title: 'Certificate and usage accounting',
    panels: [
      {
        title: 'Certificate expires in',
        description: 'certd renews when a third of the lifetime is left; alert under 14 days.',
        type: 'stat',
        w: 6,
        unit: 'dtdurations',
        queries: [{ expr: 'max(gpt_proxy_cert_expiry_timestamp_seconds) - time()', legend: 'expires in' }],
        thresholds: [
          [null, 'red'],
          [14 * 86400, 'orange'],
          [30 * 86400, 'green'],
        ],
      },
      {
        title: 'Self-signed placeholder served',
        description: 'Expected with ACME_DIRECTORY=self-signed only; otherwise the CA has not issued yet.',
        type: 'stat',
        w: 6,
        queries: [{ expr: 'max(gpt_proxy_cert_self_signed)', legend: 'self-signed' }],
        mappings: { '0': { text: 'no', color: 'green' }, '1': { text: 'yes', color: 'orange' } },
      },
      {
        title: 'Certificate orders failed in a row',
        description: 'Since the last success; certd backs off between attempts.',
        type: 'stat',
        w: 6,
        unit: 'short',
        queries: [{ expr: 'max(gpt_proxy_cert_consecutive_failures)', legend: 'failures' }],
        thresholds: [
          [null, 'green'],
          [1, 'orange'],
          [3, 'red'],
        ],
      },
      {
        title: 'Usage rows',
        description: 'Rows waiting for Postgres, write failures (retried) and rows dropped (lost; alert).',
        type: 'timeseries',
        w: 6,
        unit: 'short',
        queries: [
          { expr: 'sum(gpt_proxy_usage_buffer_rows)', legend: 'buffered' },
          {
            expr: 'sum(increase(gpt_proxy_usage_write_failures_total[$__rate_interval]))',
            legend: 'write failures',
          },
          { expr: 'sum(increase(gpt_proxy_usage_rows_dropped_total[$__rate_interval]))', legend: 'dropped' },
        ],
      },
    ],
  },
  {
    title: 'nginx and alerts',
    panels: [
      {
        title: 'nginx connections',
        description: 'From stub_status, through prometheus-nginx-exporter.',
        type: 'timeseries',
        w: 8,
        unit: 'short',
        queries: ['active', 'reading', 'writing', 'waiting'].map((state) => ({
          expr: `sum(nginx_connections_${state})`,
          legend: state,
        })),
      },
      {
        title: 'nginx requests per second',
        description: 'Everything nginx answered, ACME challenges and redirects included.',
        type: 'timeseries',
        w: 8,
        unit: 'reqps',
        queries: [{ expr: 'sum(rate(nginx_http_requests_total[$__rate_interval]))', legend: 'requests' }],
      },
      {
        title: 'Firing alerts',
        description:
          'The rules in monitoring/rules/gpt-proxy.rules.yml that fire now; docs/runbook.md says what to do.',
        type: 'table',
        w: 8,
        queries: [{ expr: 'ALERTS{alertstate="firing"}', instant: true }],
      },
    ],
  },
];
