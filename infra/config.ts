import { isIP } from 'node:net';
import { scheduleProblem } from './backup-schedule.ts';

// The stack's configuration (`gpt-proxy:` namespace, see Pulumi.yaml), read once into a plain,
// checked object. Pulumi.yaml declares the same defaults for `pulumi config`; a unit test keeps the
// two in step. Secrets are read separately (secrets.ts) and never pass through this object.

export interface ImageTags {
  postgres: string;
  redis: string;
  nginx: string;
  nodeBase: string;
  /** The monitoring images, pulled only with `monitoring: true`. */
  prometheus: string;
  grafana: string;
  nginxExporter: string;
}

export interface Settings {
  stack: string;
  /** Prefix of every Docker object's name, so two stacks can share one Docker host. */
  prefix: string;
  dockerHost: string;
  domain: string;
  acmeEmail: string;
  acmeDirectory: string;
  /** PEM CA bundle to trust for the ACME server's own TLS (a private CA); '' for the system roots. */
  acmeCaBundle: string;
  upstreamType: string;
  openaiBaseUrl: string;
  azureEndpoint: string;
  azureDeploymentNames: string;
  azureApiVersion: string;
  appReplicas: number;
  rateLimitRpm: number;
  rateLimitTpm: number;
  logPromptBody: boolean;
  bindAddress: string;
  /** Networks that may reach /admin… through nginx, comma-separated; '' lets everyone (the keys still decide). */
  adminAllowCidrs: string;
  httpPort: number;
  httpsPort: number;
  images: ImageTags;
  monitoring: boolean;
  backupSchedule: string;
  backupRetention: number;
}

type Defaults = Omit<Settings, 'stack' | 'prefix' | 'domain'>;

/** Defaults for every optional key; `domain` has none and must be set per stack. */
export const DEFAULTS: Defaults = {
  dockerHost: 'unix:///var/run/docker.sock',
  acmeEmail: '',
  acmeDirectory: 'letsencrypt',
  acmeCaBundle: '',
  upstreamType: 'openai',
  openaiBaseUrl: 'https://api.openai.com/v1',
  azureEndpoint: '',
  azureDeploymentNames: '',
  azureApiVersion: '2024-10-21',
  appReplicas: 2,
  rateLimitRpm: 60,
  rateLimitTpm: 0,
  logPromptBody: false,
  bindAddress: '0.0.0.0',
  adminAllowCidrs: '',
  httpPort: 80,
  httpsPort: 443,
  images: {
    postgres: 'postgres:15-bookworm',
    redis: 'redis:7.2-bookworm',
    nginx: 'nginx:1.28-bookworm',
    nodeBase: 'node:24-bookworm-slim',
    // Prometheus 2.x, as Debian's promtool that checks the generated configuration and rules.
    prometheus: 'prom/prometheus:v2.53.4',
    grafana: 'grafana/grafana:11.6.1',
    nginxExporter: 'nginx/nginx-prometheus-exporter:1.4.0',
  },
  monitoring: false,
  // Daily at 03:00 UTC (infra/backup-schedule.ts); `off` leaves only manual backups.
  backupSchedule: '0 3 * * *',
  backupRetention: 7,
};

/** The part of pulumi.Config read here (a plain object in the unit tests). */
export interface ConfigReader {
  get(key: string): string | undefined;
  getNumber(key: string): number | undefined;
  getBoolean(key: string): boolean | undefined;
  getObject<T>(key: string): T | undefined;
}

/**
 * Reads the stack's settings from Pulumi config, filling in the defaults, and throws one error
 * listing every problem (key and fix, never a value) so an operator fixes them in one go.
 */
export function loadSettings(config: ConfigReader, stack: string): Settings {
  const text = (key: keyof Defaults & string, fallback: string) => config.get(key) || fallback;
  const images = config.getObject<Partial<Record<keyof ImageTags, unknown>>>('images') ?? {};
  const settings: Settings = {
    stack,
    prefix: `gpt-proxy-${stack}`,
    dockerHost: text('dockerHost', DEFAULTS.dockerHost),
    domain: config.get('domain') ?? '',
    acmeEmail: text('acmeEmail', DEFAULTS.acmeEmail),
    acmeDirectory: text('acmeDirectory', DEFAULTS.acmeDirectory),
    acmeCaBundle: text('acmeCaBundle', DEFAULTS.acmeCaBundle),
    upstreamType: text('upstreamType', DEFAULTS.upstreamType),
    openaiBaseUrl: text('openaiBaseUrl', DEFAULTS.openaiBaseUrl),
    azureEndpoint: text('azureEndpoint', DEFAULTS.azureEndpoint),
    azureDeploymentNames: text('azureDeploymentNames', DEFAULTS.azureDeploymentNames),
    azureApiVersion: text('azureApiVersion', DEFAULTS.azureApiVersion),
    appReplicas: config.getNumber('appReplicas') ?? DEFAULTS.appReplicas,
    rateLimitRpm: config.getNumber('rateLimitRpm') ?? DEFAULTS.rateLimitRpm,
    rateLimitTpm: config.getNumber('rateLimitTpm') ?? DEFAULTS.rateLimitTpm,
    logPromptBody: config.getBoolean('logPromptBody') ?? DEFAULTS.logPromptBody,
    bindAddress: text('bindAddress', DEFAULTS.bindAddress),
    // One line, no blanks: nginx's start-up check takes nothing else.
    adminAllowCidrs: text('adminAllowCidrs', DEFAULTS.adminAllowCidrs)
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '')
      .join(','),
    httpPort: config.getNumber('httpPort') ?? DEFAULTS.httpPort,
    httpsPort: config.getNumber('httpsPort') ?? DEFAULTS.httpsPort,
    images: {
      postgres: tag(images.postgres, DEFAULTS.images.postgres),
      redis: tag(images.redis, DEFAULTS.images.redis),
      nginx: tag(images.nginx, DEFAULTS.images.nginx),
      nodeBase: tag(images.nodeBase, DEFAULTS.images.nodeBase),
      prometheus: tag(images.prometheus, DEFAULTS.images.prometheus),
      grafana: tag(images.grafana, DEFAULTS.images.grafana),
      nginxExporter: tag(images.nginxExporter, DEFAULTS.images.nginxExporter),
    },
    monitoring: config.getBoolean('monitoring') ?? DEFAULTS.monitoring,
    backupSchedule: text('backupSchedule', DEFAULTS.backupSchedule),
    backupRetention: config.getNumber('backupRetention') ?? DEFAULTS.backupRetention,
  };
  const problems = settingsProblems(settings);
  if (problems.length > 0) {
    throw new Error(`invalid gpt-proxy stack configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return settings;
}

function tag(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : fallback;
}

/** The most app replicas a stack may run (Postgres's max_connections is sized for them). */
export const APP_REPLICAS_MAX = 20;

// Docker's reference grammar (distribution/reference): [HOST[:PORT]/]PATH[:TAG][@DIGEST]. A host
// may have upper case, a path component is lower case with `.`, `_`, `__` or dashes between its
// parts, a tag is up to 128 word characters, dots and dashes, not starting with either of those.
const DOMAIN_COMPONENT = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_REF = new RegExp(
  `^(?:${HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::\\w[\\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`,
);
const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;

/** What is wrong with the settings that the app's own schema does not check (env.ts does that). */
export function settingsProblems(s: Settings): string[] {
  const problems: string[] = [];
  const whole = (key: string, n: number, min: number, max: number) => {
    if (!Number.isInteger(n) || n < min || n > max)
      problems.push(`${key}: must be a whole number from ${min} to ${max}`);
  };
  if (!/^(unix|ssh|tcp):\/\/\S+$/.test(s.dockerHost)) {
    problems.push('dockerHost: must be unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376');
  }
  if (s.domain === '') problems.push('domain: is required: pulumi config set domain api.example.com');
  whole('appReplicas', s.appReplicas, 1, APP_REPLICAS_MAX);
  whole('httpPort', s.httpPort, 1, 65535);
  whole('httpsPort', s.httpsPort, 1, 65535);
  whole('backupRetention', s.backupRetention, 1, 3650);
  const schedule = scheduleProblem(s.backupSchedule);
  if (schedule !== undefined) {
    problems.push(`backupSchedule: ${schedule} (e.g. "0 3 * * *" for 03:00 UTC daily, or off)`);
  }
  if (s.httpPort === s.httpsPort) problems.push('httpsPort: must differ from httpPort');
  if (s.acmeCaBundle !== '' && !s.acmeCaBundle.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push(
      'acmeCaBundle: must be PEM certificates: pulumi config set acmeCaBundle -- "$(cat ca.pem)"',
    );
  }
  if (!IPV4.test(s.bindAddress) && !/^[0-9a-fA-F:]+$/.test(s.bindAddress)) {
    problems.push('bindAddress: must be an IP address of the Docker host, e.g. 0.0.0.0 or 127.0.0.1');
  }
  const network = s.adminAllowCidrs === '' ? -1 : s.adminAllowCidrs.split(',').findIndex(notNetwork);
  if (network >= 0) {
    problems.push(
      `adminAllowCidrs: item ${network + 1} is not a network: give addresses or CIDR networks separated by commas, e.g. 10.0.0.0/8,192.168.1.0/24 (or leave it empty for no limit)`,
    );
  }
  for (const [name, ref] of Object.entries(s.images)) {
    if (!IMAGE_REF.test(ref))
      problems.push(`images.${name}: must be an image reference like postgres:15-bookworm`);
  }
  return problems;
}

/**
 * Whether `item` is not something nginx's `allow` takes: an IP address, optionally with a prefix
 * length. Only hex digits, dots and colons, as nginx's start-up check wants (isIP also takes an
 * IPv6 zone id, 'fe80::1%eth0', which would keep nginx from starting).
 */
function notNetwork(item: string): boolean {
  const [address = '', prefix, extra] = item.split('/');
  const version = /^[0-9A-Fa-f.:]+$/.test(address) ? isIP(address) : 0;
  if (version === 0 || extra !== undefined) return true;
  return prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (version === 4 ? 32 : 128));
}

/** Settings that work but are probably not what the operator meant. */
export function settingsWarnings(s: Settings): string[] {
  const warnings: string[] = [];
  if (s.acmeDirectory !== 'self-signed' && s.httpPort !== 80) {
    warnings.push(
      `httpPort is ${s.httpPort}: the CA checks HTTP-01 challenges on port 80 of ${s.domain}; forward port 80 to it`,
    );
  }
  return warnings;
}

/** The public base URL: https://DOMAIN, with the port only when it is not 443. */
export function publicUrl(s: Settings): string {
  return s.httpsPort === 443 ? `https://${s.domain}` : `https://${s.domain}:${s.httpsPort}`;
}
