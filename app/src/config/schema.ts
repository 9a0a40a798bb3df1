import { z } from 'zod';
import { DRAIN_GRACE_MS } from '../shutdown-budget.ts';
import { type AzureDeployment, parseDeployments } from '../upstream/deployments.ts';
import { apiKeyList, boolean, httpUrl, integer, list, oneOf, port, serviceUrl } from './fields.ts';

// The contract's environment, one zod schema per concern. Programs load only the sections they
// use (init-db needs no ENCRYPTION_KEY), and the Pulumi program checks the environment it hands
// the app against these same schemas.

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const KEY_HINT = 'must be 32 bytes written as 64 hex characters; generate one with `openssl rand -hex 32`';

function required(fix: string) {
  return z.string({ error: `is required: ${fix}` });
}

/** Connections each process's pg pool may hold (DB_POOL_SIZE's default; infra sizes Postgres by it). */
export const DEFAULT_DB_POOL_SIZE = 10;

const database = z
  .object({
    DATABASE_URL: serviceUrl(
      ['postgres:', 'postgresql:'],
      'postgres://USER:PASSWORD@HOST:5432/DB',
    ).optional(),
    POSTGRES_HOST: z.string().default('postgres'),
    POSTGRES_PORT: port(5432),
    POSTGRES_USER: z.string().default('gpt_proxy'),
    POSTGRES_DB: z.string().default('gpt_proxy'),
    POSTGRES_PASSWORD: z.string().optional(),
    DB_POOL_SIZE: integer(DEFAULT_DB_POOL_SIZE, 1, 1000),
  })
  .refine((v) => v.DATABASE_URL !== undefined || v.POSTGRES_PASSWORD !== undefined, {
    path: ['POSTGRES_PASSWORD'],
    message: 'is required: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or give DATABASE_URL',
    // Report it alongside problems in other fields, so every problem is listed at once.
    when: () => true,
  })
  .transform((v) => ({
    connectionString: v.DATABASE_URL,
    host: v.POSTGRES_HOST,
    port: v.POSTGRES_PORT,
    user: v.POSTGRES_USER,
    database: v.POSTGRES_DB,
    password: v.POSTGRES_PASSWORD,
    poolSize: v.DB_POOL_SIZE,
  }));

const redis = z
  .object({
    REDIS_URL: serviceUrl(['redis:', 'rediss:'], 'redis://:PASSWORD@HOST:6379/0').optional(),
    REDIS_HOST: z.string().default('redis'),
    REDIS_PORT: port(6379),
    REDIS_PASSWORD: z.string().optional(),
  })
  .transform((v) => ({
    url: v.REDIS_URL,
    host: v.REDIS_HOST,
    port: v.REDIS_PORT,
    password: v.REDIS_PASSWORD,
  }));

const encryption = z
  .object({
    ENCRYPTION_KEY: required('generate one with `openssl rand -hex 32`').regex(HEX_KEY, KEY_HINT),
    ENCRYPTION_KEY_PREVIOUS: list().refine((keys) => keys.every((k) => HEX_KEY.test(k)), {
      message: `each comma-separated key ${KEY_HINT}`,
    }),
  })
  .transform((v) => ({
    current: v.ENCRYPTION_KEY.toLowerCase(),
    previous: v.ENCRYPTION_KEY_PREVIOUS.map((k) => k.toLowerCase()),
  }));

const deployments = list().transform((items, ctx): AzureDeployment[] => {
  const parsed = parseDeployments(items);
  if ('error' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }
  return parsed;
});

const upstream = z
  .object({
    UPSTREAM_TYPE: oneOf(['openai', 'azure'], 'openai'),
    OPENAI_API_KEYS: apiKeyList(),
    OPENAI_BASE_URL: httpUrl('https://api.openai.com/v1').default('https://api.openai.com/v1'),
    AZURE_ENDPOINT: httpUrl('https://RESOURCE.openai.azure.com').optional(),
    AZURE_API_KEYS: apiKeyList(),
    AZURE_DEPLOYMENT_NAMES: deployments,
    UPSTREAM_PROBE_INTERVAL_SECONDS: integer(60, 1, 86_400),
    AZURE_API_VERSION: z
      .string()
      .default('2024-10-21')
      .refine((v) => v === 'v1' || /^\d{4}-\d{2}-\d{2}(-preview)?$/.test(v), {
        message: 'must be a dated version like 2024-10-21 (or 2025-04-01-preview), or v1',
      }),
  })
  .superRefine((v, ctx) => {
    if (v.UPSTREAM_TYPE !== 'azure' || v.AZURE_API_KEYS.length === 0) return;
    if (v.AZURE_ENDPOINT === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['AZURE_ENDPOINT'],
        message: 'is required with AZURE_API_KEYS: set it to https://RESOURCE.openai.azure.com',
      });
    }
    if (v.AZURE_DEPLOYMENT_NAMES.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['AZURE_DEPLOYMENT_NAMES'],
        message: 'is required with AZURE_API_KEYS: list the deployments, e.g. gpt-4o,gpt-35-turbo',
      });
    }
  })
  .transform((v) => ({
    type: v.UPSTREAM_TYPE,
    probeIntervalMs: v.UPSTREAM_PROBE_INTERVAL_SECONDS * 1000,
    openai: { apiKeys: v.OPENAI_API_KEYS, baseUrl: v.OPENAI_BASE_URL },
    azure: {
      endpoint: v.AZURE_ENDPOINT,
      apiKeys: v.AZURE_API_KEYS,
      deployments: v.AZURE_DEPLOYMENT_NAMES,
      apiVersion: v.AZURE_API_VERSION,
    },
  }));

const server = z
  .object({
    HOST: z.string().default('0.0.0.0'),
    PORT: port(8000),
    MAX_BODY_BYTES: integer(20_971_520, 1024, 1_073_741_824),
    // Shorter only: the container's stop timeout is sized for the longest (shutdown-budget.ts).
    SHUTDOWN_GRACE_SECONDS: integer(DRAIN_GRACE_MS / 1000, 0, DRAIN_GRACE_MS / 1000),
  })
  .transform((v) => ({
    host: v.HOST,
    port: v.PORT,
    maxBodyBytes: v.MAX_BODY_BYTES,
    shutdownGraceMs: v.SHUTDOWN_GRACE_SECONDS * 1000,
  }));

const metrics = z.object({ METRICS_PORT: port(9464) }).transform((v) => ({ port: v.METRICS_PORT }));

const log = z
  .object({
    LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    LOG_PROMPT_BODY: boolean(false),
  })
  .transform((v) => ({ level: v.LOG_LEVEL, promptBody: v.LOG_PROMPT_BODY }));

const rateLimit = z
  .object({
    RATE_LIMIT_RPM: integer(60, 0, 10_000_000),
    RATE_LIMIT_TPM: integer(0, 0, 1_000_000_000),
    RATE_LIMIT_DEFAULT_COMPLETION_TOKENS: integer(1024, 0, 10_000_000),
    RATE_LIMIT_FAIL_OPEN: boolean(true),
  })
  .transform((v) => ({
    rpm: v.RATE_LIMIT_RPM,
    tpm: v.RATE_LIMIT_TPM,
    defaultCompletionTokens: v.RATE_LIMIT_DEFAULT_COMPLETION_TOKENS,
    failOpen: v.RATE_LIMIT_FAIL_OPEN,
  }));

const usage = z
  .object({ USAGE_RETENTION_DAYS: integer(0, 0, 36_500) })
  .transform((v) => ({ retentionDays: v.USAGE_RETENTION_DAYS }));

const ACME_DIRECTORIES = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const;

const acmeDirectory = z
  .string()
  .default('letsencrypt')
  .transform((raw, ctx): { kind: 'self-signed' } | { kind: 'acme'; url: string } => {
    const v = raw.trim();
    if (v === 'self-signed') return { kind: 'self-signed' };
    if (v === 'letsencrypt' || v === 'letsencrypt-staging') return { kind: 'acme', url: ACME_DIRECTORIES[v] };
    if (/^https:\/\/[^\s]+$/.test(v)) return { kind: 'acme', url: v };
    ctx.addIssue({
      code: 'custom',
      message: 'must be letsencrypt, letsencrypt-staging, self-signed, or an https:// directory URL',
    });
    return z.NEVER;
  });

const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

const acme = z
  .object({
    DOMAIN: required('set it to the public host name, e.g. api.example.com').regex(HOSTNAME, {
      message: 'must be a host name like api.example.com (no scheme, port or path)',
    }),
    ACME_EMAIL: z.email({ message: 'must be an e-mail address for the ACME account' }).optional(),
    ACME_DIRECTORY: acmeDirectory,
    ACME_CA_FILE: z.string().optional(),
    CERT_DIR: z.string().default('/etc/gpt-proxy/certs'),
    ACME_WEBROOT: z.string().default('/var/www/acme'),
    CERT_RENEW_FRACTION: z
      .string()
      .default('0.33')
      .transform((raw, ctx) => {
        const n = Number(raw);
        if (raw.trim() === '' || !(n > 0 && n < 1)) {
          ctx.addIssue({ code: 'custom', message: 'must be a fraction between 0 and 1, e.g. 0.33' });
          return z.NEVER;
        }
        return n;
      }),
  })
  .transform((v) => ({
    domain: v.DOMAIN.toLowerCase(),
    email: v.ACME_EMAIL,
    directory: v.ACME_DIRECTORY,
    caFile: v.ACME_CA_FILE,
    certDir: v.CERT_DIR,
    webroot: v.ACME_WEBROOT,
    renewFraction: v.CERT_RENEW_FRACTION,
  }));

export const sections = {
  database,
  redis,
  encryption,
  upstream,
  server,
  metrics,
  log,
  rateLimit,
  usage,
  acme,
};

export type Section = keyof typeof sections;
export type Config = { readonly [K in Section]: Readonly<z.output<(typeof sections)[K]>> };
