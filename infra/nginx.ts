import { readFileSync } from 'node:fs';
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { APP_ALIAS } from './app.ts';
import { LOGGING, labels, RESTART, shellProbe } from './containers.ts';
import { ACME_WEBROOT, APP_PORT, CERT_DIR, MAX_BODY_BYTES } from './env.ts';
import { listFiles } from './files.ts';
import { REPO_ROOT } from './images.ts';
import { envList } from './secret-files.ts';

// nginx: the official image, configured from the repo's nginx/ directory, which is uploaded into the
// container when it is created (so it works the same on a remote Docker host): nginx.conf, the
// templates its entrypoint renders, and the entrypoint scripts (render, wait for certd's first
// certificate, reload on a new one). The only published container: `httpPort`/`httpsPort` on
// `bindAddress`. Replaced delete-first, since the host ports can be bound only once. Also on
// `metrics` (alias `nginx`), where the nginx exporter reads its stub_status listener.

const NGINX_DIR = `${REPO_ROOT}nginx/`;
export const STATUS_PORT = 8081;
export const NGINX_ALIAS = 'nginx';
/**
 * The health check: GET stub_status from inside the container. The Debian image has bash (for
 * /dev/tcp) but neither curl nor wget; the Alpine one has busybox wget.
 */
export function statusCheck(port: number): string {
  return [
    'if command -v bash >/dev/null; then',
    `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && printf "GET /stub_status HTTP/1.0\\r\\n\\r\\n" >&3 && grep -q "Active connections" <&3';`,
    `else wget -q -O - http://127.0.0.1:${port}/stub_status | grep -q 'Active connections'; fi`,
  ].join(' ');
}

/** Where each file of nginx/ goes in the container; other files (README.md) stay out. */
export function nginxUploads(): docker.types.input.ContainerUpload[] {
  const uploads: docker.types.input.ContainerUpload[] = [];
  for (const path of listFiles(NGINX_DIR)) {
    const content = readFileSync(`${NGINX_DIR}${path}`, 'utf8');
    if (path === 'nginx.conf') uploads.push({ file: '/etc/nginx/nginx.conf', content });
    else if (path.startsWith('templates/') && path.endsWith('.conf.template')) {
      uploads.push({ file: `/etc/nginx/${path}`, content });
    } else if (/^docker-entrypoint\.d\/[^/]+\.(sh|envsh)$/.test(path)) {
      uploads.push({ file: `/${path}`, content, executable: true });
    }
  }
  return uploads;
}

export interface NginxArgs {
  provider: docker.Provider;
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  metricsNetwork: pulumi.Input<string>;
  certsVolume: pulumi.Input<string>;
  webrootVolume: pulumi.Input<string>;
  domain: string;
  bindAddress: string;
  /** NGINX_ADMIN_ALLOW_CIDRS: networks that may reach /admin…; '' for no limit. */
  adminAllowCidrs: string;
  httpPort: number;
  httpsPort: number;
  dependsOn: pulumi.Resource[];
}

export class Nginx extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: NginxArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Nginx', name, {}, opts);
    const env: Record<string, string> = {
      APP_UPSTREAM: `${APP_ALIAS}:${APP_PORT}`,
      DOMAIN: args.domain,
      CERT_DIR,
      ACME_WEBROOT,
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      NGINX_HTTP_PORT: '80',
      NGINX_HTTPS_PORT: '443',
      NGINX_PUBLIC_HTTPS_PORT: String(args.httpsPort),
      NGINX_STATUS_PORT: String(STATUS_PORT),
      // Docker's embedded DNS: follows the app replicas as they are replaced.
      NGINX_RESOLVER: '127.0.0.11',
      // Only when set: an unchanged environment does not replace nginx on upgrade.
      ...(args.adminAllowCidrs === '' ? {} : { NGINX_ADMIN_ALLOW_CIDRS: args.adminAllowCidrs }),
    };
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.prefix}-nginx`,
        image: args.image,
        envs: envList(env),
        uploads: nginxUploads(),
        ports: [
          { internal: 80, external: args.httpPort, ip: args.bindAddress, protocol: 'tcp' },
          { internal: 443, external: args.httpsPort, ip: args.bindAddress, protocol: 'tcp' },
        ],
        volumes: [
          { volumeName: args.certsVolume, containerPath: CERT_DIR, readOnly: true },
          { volumeName: args.webrootVolume, containerPath: ACME_WEBROOT, readOnly: true },
        ],
        // The public name as an alias on the appliance's network: certd's pre-order check reaches
        // nginx by it without hairpin routing through the host's public address.
        networksAdvanced: [
          { name: args.network, aliases: [args.domain] },
          { name: args.metricsNetwork, aliases: [NGINX_ALIAS] },
        ],
        healthcheck: shellProbe(statusCheck(STATUS_PORT), '20s'),
        wait: true,
        // Its entrypoint waits up to 300 s for certd's first certificate.
        waitTimeout: 360,
        restart: RESTART,
        stopTimeout: 30,
        destroyGraceSeconds: 30,
        labels: labels(args.prefix, 'nginx'),
        ...LOGGING,
      },
      { parent: this, provider: args.provider, deleteBeforeReplace: true, dependsOn: args.dependsOn },
    );
    this.registerOutputs({ name: this.container.name });
  }
}
