import * as pulumi from '@pulumi/pulumi';
import { AppReplicas } from './app.ts';
import { Backups } from './backup.ts';
import { Certd } from './certd.ts';
import { Certificate } from './certificate.ts';
import { loadSettings, publicUrl, settingsWarnings } from './config.ts';
import {
  acmeEnv,
  appEnv,
  certdEnv,
  checkedEnv,
  containerEnv,
  databaseEnv,
  dockerEnvs,
  HOOK_ACME_CA_FILE,
  SECTIONS,
  upstreamEnv,
  validatedEnv,
} from './env.ts';
import { digestFiles } from './files.ts';
import { ProvisioningHooks } from './hooks.ts';
import { DockerHost } from './host.ts';
import { Images, REPO_ROOT } from './images.ts';
import { Monitoring } from './monitoring.ts';
import { Nginx } from './nginx.ts';
import { Postgres } from './postgres.ts';
import { Redis } from './redis.ts';
import { ApplianceSecrets } from './secrets.ts';

// gpt-proxy on one Docker host: `pulumi up` takes a host with Docker to a working HTTPS endpoint.
// Each service is a component (see its file); this file only wires them together in order.

const config = new pulumi.Config('gpt-proxy');
const s = loadSettings(config, pulumi.getStack());
for (const warning of settingsWarnings(s)) pulumi.log.warn(warning);
const secrets = new ApplianceSecrets('secrets', { config });
const host = new DockerHost('host', { dockerHost: s.dockerHost, prefix: s.prefix });
const { provider, volumes } = host;
const edge = host.edgeNetwork.name;
const data = host.dataNetwork.name;
const metrics = host.metricsNetwork.name;
const images = new Images('images', { provider, tags: s.images, stack: s.stack });

const postgres = new Postgres('postgres', {
  provider,
  prefix: s.prefix,
  image: images.postgres,
  network: data,
  volume: volumes.postgres.name,
  password: secrets.postgresPassword,
});
const redis = new Redis('redis', {
  provider,
  prefix: s.prefix,
  image: images.redis,
  network: data,
  volume: volumes.redis.name,
  password: secrets.redisPassword,
});

const hooks = new ProvisioningHooks('hooks', {
  dockerHost: s.dockerHost,
  image: images.appTag,
  network: data,
  migrationsDigest: digestFiles(`${REPO_ROOT}app/src/db/migrations`),
  postgres: postgres.container,
  initDbEnv: checkedEnv('init-db', databaseEnv(secrets), SECTIONS.initDb),
  upstreamKeysEnv: checkedEnv(
    'init-upstream-keys',
    {
      ...databaseEnv(secrets),
      ENCRYPTION_KEY: secrets.encryptionKey,
      ENCRYPTION_KEY_PREVIOUS: secrets.encryptionKeyPrevious,
      ...upstreamEnv(s, secrets, true),
    },
    SECTIONS.initUpstreamKeys,
  ),
  createAdminEnv: checkedEnv('create-admin', databaseEnv(secrets), SECTIONS.createAdmin),
  adminEmail: s.acmeEmail || `admin@${s.domain}`,
  dependsOn: [images.appImage],
});

const appEnvironment = containerEnv('app', appEnv(s, secrets), SECTIONS.app);
const app = new AppReplicas('app', {
  provider,
  prefix: s.prefix,
  replicas: s.appReplicas,
  image: images.app,
  edgeNetwork: edge,
  dataNetwork: data,
  metricsNetwork: metrics,
  envs: appEnvironment.envs,
  uploads: appEnvironment.uploads,
  dependsOn: [hooks.initDb, redis.container],
});

const certd = new Certd('certd', {
  provider,
  prefix: s.prefix,
  image: images.app,
  network: edge,
  metricsNetwork: metrics,
  certsVolume: volumes.certs.name,
  webrootVolume: volumes.acmeWebroot.name,
  envs: dockerEnvs(validatedEnv('certd', certdEnv(s), SECTIONS.certd)),
  caBundle: s.acmeCaBundle,
});

const nginx = new Nginx('nginx', {
  provider,
  prefix: s.prefix,
  image: images.nginx,
  network: edge,
  metricsNetwork: metrics,
  certsVolume: volumes.certs.name,
  webrootVolume: volumes.acmeWebroot.name,
  domain: s.domain,
  bindAddress: s.bindAddress,
  adminAllowCidrs: s.adminAllowCidrs,
  httpPort: s.httpPort,
  httpsPort: s.httpsPort,
  // certd creates the shared volumes and the first certificate; the app is what nginx serves.
  dependsOn: [certd.container, ...app.containers],
});

const certificate = new Certificate('certificate', {
  dockerHost: s.dockerHost,
  image: images.appTag,
  network: edge,
  certsVolume: volumes.certs.name,
  webrootVolume: volumes.acmeWebroot.name,
  env: checkedEnv('issue-cert', acmeEnv(s, HOOK_ACME_CA_FILE), SECTIONS.issueCert),
  caBundle: s.acmeCaBundle,
  nginx: nginx.container,
  dependsOn: [certd.container],
});

new Backups('backups', {
  provider,
  prefix: s.prefix,
  image: images.postgres,
  network: data,
  password: secrets.postgresPassword,
  schedule: s.backupSchedule,
  retention: s.backupRetention,
  dependsOn: [postgres.container],
});

if (s.monitoring) {
  new Monitoring('monitoring', {
    provider,
    prefix: s.prefix,
    stack: s.stack,
    images: s.images,
    network: metrics,
    dependsOn: [...app.containers, certd.container, nginx.container],
  });
}

export const endpoint = publicUrl(s);
export const healthUrl = `${endpoint}/health`;
export const adminApiKey = hooks.adminApiKey;
export const certificateExpiresAt = certificate.expiresAt;
