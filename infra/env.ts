import type * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { SECRET_VARIABLES } from '../app/src/config/env.ts';
import { ConfigError, loadConfig, type Section } from '../app/src/config/index.ts';
import type { Settings } from './config.ts';
import { envList, secretFiles } from './secret-files.ts';

// The environment each program of the app image gets, built from the stack settings and checked
// against the app's own config schema (app/src/config/schema.ts), so infra and app cannot drift:
// once when the program runs, with stand-ins for secrets that are not known yet, and again with the
// real values before any container or hook receives them. The values are checked, so errors name
// the variable the operator knows; a long-running container then gets each secret as a file
// (containerEnv), a hook as a variable.

/** The sections each program loads (see app/src/main.ts and the scripts' ctx.load calls). */
export const SECTIONS = {
  app: ['database', 'redis', 'encryption', 'upstream', 'server', 'metrics', 'log', 'rateLimit', 'usage'],
  certd: ['acme', 'metrics', 'log', 'server'],
  issueCert: ['acme', 'log'],
  initDb: ['database'],
  initUpstreamKeys: ['database', 'encryption', 'upstream'],
  createAdmin: ['database'],
} as const satisfies Record<string, readonly Section[]>;

export const APP_PORT = 8000;
export const METRICS_PORT = 9464;
export const MAX_BODY_BYTES = 20_971_520;
export const CERT_DIR = '/etc/gpt-proxy/certs';
export const ACME_WEBROOT = '/var/www/acme';
/**
 * Where certd finds `acmeCaBundle` (uploaded into its container) and where the issue-cert hook,
 * a plain `docker run` without uploads, writes it from its environment first.
 */
export const ACME_CA_FILE = '/etc/gpt-proxy/acme-ca.pem';
export const HOOK_ACME_CA_FILE = '/tmp/acme-ca.pem';
export const DB = { host: 'postgres', port: 5432, user: 'gpt_proxy', name: 'gpt_proxy' } as const;
export const REDIS = { host: 'redis', port: 6379 } as const;

export type EnvSpec = Record<string, pulumi.Input<string>>;

export interface AppSecrets {
  postgresPassword: pulumi.Output<string>;
  redisPassword: pulumi.Output<string>;
  encryptionKey: pulumi.Output<string>;
  /** Earlier encryption keys, comma-separated, while a rotation is under way ('' otherwise). */
  encryptionKeyPrevious: pulumi.Output<string>;
  openaiApiKeys: pulumi.Output<string>;
  azureApiKeys: pulumi.Output<string>;
}

export function databaseEnv(secrets: Pick<AppSecrets, 'postgresPassword'>): EnvSpec {
  return {
    POSTGRES_HOST: DB.host,
    POSTGRES_PORT: String(DB.port),
    POSTGRES_USER: DB.user,
    POSTGRES_DB: DB.name,
    POSTGRES_PASSWORD: secrets.postgresPassword,
  };
}

/** Upstream settings; the keys themselves only where `withKeys` (the init-upstream-keys hook). */
export function upstreamEnv(s: Settings, secrets: AppSecrets, withKeys: boolean): EnvSpec {
  return {
    UPSTREAM_TYPE: s.upstreamType,
    OPENAI_BASE_URL: s.openaiBaseUrl,
    AZURE_ENDPOINT: s.azureEndpoint,
    AZURE_DEPLOYMENT_NAMES: s.azureDeploymentNames,
    AZURE_API_VERSION: s.azureApiVersion,
    ...(withKeys ? { OPENAI_API_KEYS: secrets.openaiApiKeys, AZURE_API_KEYS: secrets.azureApiKeys } : {}),
  };
}

/** The proxy's environment. It gets no upstream keys: it reads them, sealed, from Postgres. */
export function appEnv(s: Settings, secrets: AppSecrets): EnvSpec {
  return {
    ...databaseEnv(secrets),
    REDIS_HOST: REDIS.host,
    REDIS_PORT: String(REDIS.port),
    REDIS_PASSWORD: secrets.redisPassword,
    ENCRYPTION_KEY: secrets.encryptionKey,
    ENCRYPTION_KEY_PREVIOUS: secrets.encryptionKeyPrevious,
    ...upstreamEnv(s, secrets, false),
    HOST: '0.0.0.0',
    PORT: String(APP_PORT),
    METRICS_PORT: String(METRICS_PORT),
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    LOG_LEVEL: 'info',
    LOG_PROMPT_BODY: String(s.logPromptBody),
    RATE_LIMIT_RPM: String(s.rateLimitRpm),
    RATE_LIMIT_TPM: String(s.rateLimitTpm),
  };
}

/** certd's and issue-cert's environment: the domain, the CA (and its TLS trust) and where certificates live. */
export function acmeEnv(s: Settings, caFile: string = ACME_CA_FILE): EnvSpec {
  return {
    DOMAIN: s.domain,
    ACME_EMAIL: s.acmeEmail,
    ACME_DIRECTORY: s.acmeDirectory,
    ...(s.acmeCaBundle === '' ? {} : { ACME_CA_FILE: caFile }),
    CERT_DIR,
    ACME_WEBROOT,
    METRICS_PORT: String(METRICS_PORT),
    LOG_LEVEL: 'info',
  };
}

/** certd's: acmeEnv plus the address its metrics listener binds (HOST, as for the proxy). */
export function certdEnv(s: Settings): EnvSpec {
  return { ...acmeEnv(s), HOST: '0.0.0.0' };
}

// Syntactically valid stand-ins, used only for the early check while secrets are still unknown.
const STAND_INS: Record<string, string> = {
  POSTGRES_PASSWORD: 'stand-in',
  REDIS_PASSWORD: 'stand-in',
  ENCRYPTION_KEY: '0'.repeat(64),
  ENCRYPTION_KEY_PREVIOUS: '',
  OPENAI_API_KEYS: '',
  AZURE_API_KEYS: '',
};

export function checkEnv(program: string, env: Record<string, string>, sections: readonly Section[]): void {
  try {
    loadConfig(env, sections);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err.problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n');
    throw new Error(`the ${program} environment this stack would set is refused by the app:\n${problems}`);
  }
}

/**
 * Checks `env` against the app's schema now (secrets as stand-ins, so a bad plain setting fails the
 * preview) and returns it as one secret Output that resolves only after the same check passed on the
 * real values. Error messages name variables, never values.
 */
export function validatedEnv(
  program: string,
  env: EnvSpec,
  sections: readonly Section[],
): pulumi.Output<Record<string, string>> {
  const early: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === 'string') early[name] = value;
    else if (name in STAND_INS) early[name] = STAND_INS[name] ?? '';
    else throw new Error(`${program}: ${name} is not a plain string and has no stand-in for the early check`);
  }
  checkEnv(program, early, sections);
  return pulumi.secret(
    pulumi.output(env).apply((plain) => {
      checkEnv(program, plain, sections);
      return plain;
    }),
  );
}

/** A checked environment and the names of its variables (known before the values are). */
export interface CheckedEnv {
  values: pulumi.Output<Record<string, string>>;
  names: readonly string[];
}

export function checkedEnv(program: string, env: EnvSpec, sections: readonly Section[]): CheckedEnv {
  return { values: validatedEnv(program, env, sections), names: Object.keys(env) };
}

/** A long-running container's share of an environment: variables, and the files they name. */
export interface ContainerEnv {
  /** `KEY=value`: the settings, and `NAME_FILE=path` for each secret. No secret value. */
  envs: string[];
  /** The secrets, one file each (secret-files.ts). */
  uploads: docker.types.input.ContainerUpload[];
}

/**
 * `env` as a long-running container gets it: checked as validatedEnv checks it, then every secret
 * variable (the app's SECRET_VARIABLES) turned into a file named by NAME_FILE. The files' contents
 * come from the checked values, so they resolve only once the check on the real values passed.
 */
export function containerEnv(program: string, env: EnvSpec, sections: readonly Section[]): ContainerEnv {
  const checked = validatedEnv(program, env, sections);
  const settings: Record<string, string> = {};
  const secrets: Record<string, pulumi.Output<string>> = {};
  for (const [name, value] of Object.entries(env)) {
    if ((SECRET_VARIABLES as readonly string[]).includes(name)) {
      secrets[name] = checked.apply((values) => values[name] ?? '');
    } else if (typeof value === 'string') {
      settings[name] = value;
    } else {
      throw new Error(`${program}: ${name} is not a plain string and not a secret the app reads from a file`);
    }
  }
  const files = secretFiles(secrets);
  return { envs: envList({ ...settings, ...files.env }), uploads: files.uploads };
}

/** Docker's `KEY=value` list, still secret. */
export function dockerEnvs(env: pulumi.Output<Record<string, string>>): pulumi.Output<string[]> {
  return env.apply(envList);
}
