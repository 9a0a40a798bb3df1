import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';

// The Docker host everything runs on: the provider (local socket or ssh://), three user-defined
// networks and the named volumes. `edge` carries nginx, the app and certd and reaches the internet
// (upstream APIs, the ACME CA); `data` is internal: Postgres and Redis sit only there, unreachable
// from nginx and without a route out. `metrics` is internal too: the app, certd and nginx are on it
// (always, so switching monitoring on or off replaces none of them), and with `monitoring: true`
// Prometheus, Grafana and the nginx exporter, which reach nothing else.

export interface DockerHostArgs {
  /** unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376. */
  dockerHost: string;
  /** Prefix of every name, e.g. gpt-proxy-prod. */
  prefix: string;
}

export interface Volumes {
  postgres: docker.Volume;
  redis: docker.Volume;
  certs: docker.Volume;
  acmeWebroot: docker.Volume;
}

export class DockerHost extends pulumi.ComponentResource {
  readonly provider: docker.Provider;
  readonly edgeNetwork: docker.Network;
  readonly dataNetwork: docker.Network;
  readonly metricsNetwork: docker.Network;
  readonly volumes: Volumes;

  constructor(name: string, args: DockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:DockerHost', name, {}, opts);
    const { prefix } = args;
    this.provider = new docker.Provider(`${name}-docker`, { host: args.dockerHost }, { parent: this });
    const child = { parent: this, provider: this.provider };
    const labels = [{ label: 'gpt-proxy.stack', value: prefix }];

    this.edgeNetwork = new docker.Network(
      `${name}-edge`,
      { name: `${prefix}-edge`, driver: 'bridge', labels },
      { ...child, deleteBeforeReplace: true },
    );
    this.dataNetwork = new docker.Network(
      `${name}-data`,
      { name: `${prefix}-data`, driver: 'bridge', internal: true, labels },
      { ...child, deleteBeforeReplace: true },
    );
    this.metricsNetwork = new docker.Network(
      `${name}-metrics`,
      { name: `${prefix}-metrics`, driver: 'bridge', internal: true, labels },
      { ...child, deleteBeforeReplace: true },
    );
    const volume = (key: string) =>
      new docker.Volume(
        `${name}-${key}`,
        { name: `${prefix}-${key}`, labels },
        { ...child, deleteBeforeReplace: true },
      );
    this.volumes = {
      postgres: volume('pgdata'),
      redis: volume('redisdata'),
      certs: volume('certs'),
      acmeWebroot: volume('acme'),
    };
    this.registerOutputs({
      edgeNetwork: this.edgeNetwork.name,
      dataNetwork: this.dataNetwork.name,
      metricsNetwork: this.metricsNetwork.name,
    });
  }
}
