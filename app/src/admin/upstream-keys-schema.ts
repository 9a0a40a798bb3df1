import { z } from 'zod';
import { type AzureDeployment, parseDeployments } from '../upstream/deployments.ts';
import { UPSTREAM_KEY_CHARS, UPSTREAM_KEY_CHARS_HINT } from '../upstream/key-format.ts';
import { idParam, pageQuery } from './validation.ts';

const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

const endpoint = z
  .string({ error: "'endpoint' must be a URL such as https://RESOURCE.openai.azure.com" })
  .max(2048, "'endpoint' is too long")
  // The URL parser would percent-encode a control character, but the string is stored as sent.
  .regex(/^[^\s\p{Cc}]*$/u, "'endpoint' must not contain spaces or control characters")
  .refine((s) => {
    try {
      const url = new URL(s);
      return (
        ['https:', 'http:'].includes(url.protocol) &&
        !url.username &&
        !url.password &&
        !url.search &&
        !url.hash
      );
    } catch {
      return false;
    }
  }, "'endpoint' must be an http(s) URL without credentials, query or fragment, such as https://RESOURCE.openai.azure.com")
  .transform((s) => s.replace(/\/+$/, ''));

// A deployment is written as AZURE_DEPLOYMENT_NAMES writes it (`deployment` or
// `model=deployment`), or as the stored object `{deployment, models}`.
const deploymentItem = z.union(
  [
    z.string().transform((item, ctx) => {
      const parsed = parseDeployments([item]);
      if ('error' in parsed) {
        ctx.addIssue({
          code: 'custom',
          message: `'deployments' item ${parsed.error.replace(/^item 1 /, '')}`,
        });
        return z.NEVER;
      }
      return parsed[0] as AzureDeployment;
    }),
    z.strictObject({
      deployment: z.string().regex(DEPLOYMENT_NAME),
      models: z.array(z.string().regex(DEPLOYMENT_NAME)).min(1).max(50),
    }),
  ],
  {
    error:
      '\'deployments\' items must be "deployment", "model=deployment" or {"deployment": "…", "models": ["…"]}',
  },
);

export const createUpstreamKeyBody = z
  .strictObject({
    provider: z.enum(['openai', 'azure'], { error: "'provider' is required: 'openai' or 'azure'" }),
    key: z
      .string({ error: "'key' is required: the upstream API key" })
      .min(8, "'key' is too short to be an API key")
      .max(1024, "'key' must be at most 1024 characters")
      .regex(UPSTREAM_KEY_CHARS, `'key' must be ${UPSTREAM_KEY_CHARS_HINT}`),
    endpoint: endpoint.nullable().default(null),
    deployments: z
      .array(deploymentItem, { error: "'deployments' must be an array" })
      .min(1, "'deployments' must not be empty")
      .max(100, "'deployments' must list at most 100 entries")
      .nullable()
      .default(null),
  })
  .superRefine((b, ctx) => {
    if (b.provider === 'openai') {
      // OpenAI keys all go to OPENAI_BASE_URL; a per-key URL would be silently ignored.
      for (const field of ['endpoint', 'deployments'] as const) {
        if (b[field] !== null) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `'${field}' applies to Azure keys only; OpenAI keys use OPENAI_BASE_URL`,
          });
        }
      }
      return;
    }
    if (b.endpoint === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['endpoint'],
        message: "'endpoint' is required for Azure keys: https://RESOURCE.openai.azure.com",
      });
    } else if (b.deployments === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['deployments'],
        message: '\'deployments\' is required for Azure keys, e.g. ["gpt-4o", "gpt-4o-mini=my-mini"]',
      });
    }
  });

export const updateUpstreamKeyBody = z.strictObject({
  status: z.enum(['active', 'disabled'], {
    error: "'status' is required: 'active' (enable, clearing failures) or 'disabled'",
  }),
});

export const listUpstreamKeysQuery = z.strictObject({
  ...pageQuery,
  after: idParam('after').optional(),
  status: z
    .enum(['active', 'cooling', 'disabled', 'retired'], {
      error: "'status' must be one of active, cooling, disabled, retired",
    })
    .optional(),
});
