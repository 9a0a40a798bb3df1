import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { httpProbe, LOGGING, labels, RESTART, UNPRIVILEGED } from './containers.ts';
import { ACME_CA_FILE, ACME_WEBROOT, CERT_DIR, METRICS_PORT } from './env.ts';

// certd: the app image running the certificate daemon. It writes a self-signed placeholder into the
// certs volume at once, then the CA's certificate (HTTP-01 tokens go to the shared webroot that
// nginx serves) and renews it; nginx notices new files by itself. On `edge` for the CA and on
// `metrics` (alias `certd`) for Prometheus. It is the first container to mount both volumes, so
// Docker creates them from the app image's directories, owned by its `node` user.

export const CERTD_ALIAS = 'certd';

export interface CertdArgs {
  provider: docker.Provider;
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  metricsNetwork: pulumi.Input<string>;
  certsVolume: pulumi.Input<string>;
  webrootVolume: pulumi.Input<string>;
  /** `KEY=value` list, checked against the app's config schema (env.ts). */
  envs: pulumi.Input<string[]>;
  /** `acmeCaBundle`: PEM uploaded to ACME_CA_FILE (the env names it then), or ''. */
  caBundle: string;
}

export class Certd extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: CertdArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Certd', name, {}, opts);
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.prefix}-certd`,
        image: args.image,
        command: ['node', 'dist/scripts/certd.js'],
        envs: args.envs,
        ...(args.caBundle === '' ? {} : { uploads: [{ file: ACME_CA_FILE, content: args.caBundle }] }),
        volumes: [
          { volumeName: args.certsVolume, containerPath: CERT_DIR },
          { volumeName: args.webrootVolume, containerPath: ACME_WEBROOT },
        ],
        networksAdvanced: [{ name: args.network }, { name: args.metricsNetwork, aliases: [CERTD_ALIAS] }],
        healthcheck: httpProbe(`http://127.0.0.1:${METRICS_PORT}/metrics`, '20s'),
        wait: true,
        waitTimeout: 120,
        restart: RESTART,
        user: 'node',
        init: true,
        ...UNPRIVILEGED,
        stopTimeout: 20,
        destroyGraceSeconds: 20,
        labels: labels(args.prefix, 'certd'),
        ...LOGGING,
      },
      // One daemon at a time (the lock in CERT_DIR would serialise two, but there is no need).
      { parent: this, provider: args.provider, deleteBeforeReplace: true },
    );
    this.registerOutputs({ name: this.container.name });
  }
}
