import { local } from '@pulumi/command';
import * as pulumi from '@pulumi/pulumi';
import { dockerRun } from './docker-run.ts';
import { ACME_WEBROOT, CERT_DIR, type CheckedEnv, HOOK_ACME_CA_FILE } from './env.ts';

// The last hook: issue-cert, once nginx serves the ACME webroot, exits 0 when a valid certificate
// for the domain is in place (ordering one if certd has not yet; with `self-signed`, the
// placeholder). It re-runs when its environment (domain, CA) or nginx changes.
//
// `certificateExpiresAt` is then read from the certificate itself, on every `pulumi up` (a
// command invoked, not a resource, so it is not stale after certd renews): a throw-away container
// of the app image, without network, mounts the certs volume read-only and prints the leaf's
// notAfter as ISO 8601. During a preview of a new stack it is unknown, like everything not created.

const TIMEOUT_SECONDS = 300;
const READ_EXPIRY = [
  "const { X509Certificate } = require('node:crypto');",
  "const pem = require('node:fs').readFileSync(process.argv[1], 'utf8');",
  'process.stdout.write(new Date(new X509Certificate(pem).validTo).toISOString());',
].join(' ');
const CA_BUNDLE_VARIABLE = 'GPT_PROXY_ACME_CA_BUNDLE';
const WRITE_CA_BUNDLE = `printf '%s\\n' "$${CA_BUNDLE_VARIABLE}" > ${HOOK_ACME_CA_FILE}`;

export interface CertificateArgs {
  dockerHost: string;
  image: pulumi.Input<string>;
  /** The network with a route to the CA. */
  network: pulumi.Input<string>;
  certsVolume: pulumi.Input<string>;
  webrootVolume: pulumi.Input<string>;
  env: CheckedEnv;
  /**
   * `acmeCaBundle`, or ''. A `docker run` has no uploads, so the bundle travels in the hook's
   * environment and a shell writes it to HOOK_ACME_CA_FILE (which `env` names) before issue-cert runs.
   */
  caBundle: string;
  /** nginx (serving the challenges) and certd. */
  nginx: pulumi.CustomResource;
  dependsOn: pulumi.Resource[];
}

export class Certificate extends pulumi.ComponentResource {
  readonly issueCert: local.Command;
  readonly expiresAt: pulumi.Output<string>;

  constructor(name: string, args: CertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Certificate', name, {}, opts);
    const argv = ['node', 'dist/scripts/issue-cert.js', '--timeout', String(TIMEOUT_SECONDS)];
    const withCa = args.caBundle !== '';
    const issue = dockerRun({
      dockerHost: args.dockerHost,
      image: args.image,
      network: args.network,
      volumes: [
        { volume: args.certsVolume, path: CERT_DIR },
        { volume: args.webrootVolume, path: ACME_WEBROOT },
      ],
      env: withCa
        ? args.env.values.apply((values) => ({ ...values, [CA_BUNDLE_VARIABLE]: args.caBundle }))
        : args.env.values,
      envNames: withCa ? [...args.env.names, CA_BUNDLE_VARIABLE] : args.env.names,
      argv: withCa ? ['sh', '-c', `${WRITE_CA_BUNDLE} && exec ${argv.join(' ')}`] : argv,
    });
    this.issueCert = new local.Command(
      `${name}-issue-cert`,
      {
        create: issue.command,
        environment: issue.environment,
        interpreter: issue.interpreter,
        triggers: [args.nginx.id],
      },
      { parent: this, dependsOn: [...args.dependsOn, args.nginx] },
    );

    const read = dockerRun({
      dockerHost: args.dockerHost,
      image: args.image,
      network: 'none',
      volumes: [{ volume: args.certsVolume, path: CERT_DIR, readOnly: true }],
      argv: ['node', '-e', READ_EXPIRY, `${CERT_DIR}/live/fullchain.pem`],
    });
    this.expiresAt = local
      .runOutput(
        { command: read.command, environment: read.environment, interpreter: read.interpreter },
        { parent: this, dependsOn: [this.issueCert] },
      )
      .stdout.apply((s) => s.trim());
    this.registerOutputs({ expiresAt: this.expiresAt });
  }
}
