import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { httpProbe, LOGGING, labels, RESTART, UNPRIVILEGED } from './containers.ts';
import { APP_PORT } from './env.ts';
import { APP_NODE_FLAGS } from './node-flags.ts';

// The proxy replicas: `replicas` containers of the app image, each on `edge` (alias `app`, which
// nginx resolves per request), `data` and `metrics` (alias `app-metrics`, which Prometheus resolves
// to every replica; a name of its own, so nginx, on both networks, never resolves `app` there),
// never published.
//
// Rolling update: every replica is its own resource, replaced create-before-delete (the container
// names are generated, so old and new can coexist) and `wait`ed on until its /health/live check
// passes; replica N depends on replica N-1, so Pulumi replaces them one at a time and stops at the
// first replica that does not come up healthy. Pulumi deletes the replaced containers only after
// their successors are in place, so the old ones keep serving until then, and each old one drains
// its open requests on SIGTERM (the app allows 30 s, then writes what it buffered) before it is removed.

export const APP_ALIAS = 'app';
export const APP_METRICS_ALIAS = 'app-metrics';

export interface AppReplicasArgs {
  provider: docker.Provider;
  prefix: string;
  replicas: number;
  image: pulumi.Input<string>;
  edgeNetwork: pulumi.Input<string>;
  dataNetwork: pulumi.Input<string>;
  metricsNetwork: pulumi.Input<string>;
  /** `KEY=value` list, checked against the app's config schema (env.ts); no secret value. */
  envs: pulumi.Input<string[]>;
  /** The secrets the `*_FILE` variables in `envs` name. */
  uploads: docker.types.input.ContainerUpload[];
  /** What must be in place before a replica starts (migrations applied). */
  dependsOn: pulumi.Resource[];
}

/**
 * Seconds Docker waits after SIGTERM before SIGKILL: the app's shutdown bound
 * (app/src/shutdown-budget.ts: 41 s) and a few seconds for the signal to reach Node through tini.
 */
export const APP_STOP_TIMEOUT_SECONDS = 45;

/** The proxy's command, with its V8 flags (see node-flags.ts). */
export const APP_COMMAND = ['node', ...APP_NODE_FLAGS, 'dist/app/src/main.js'];

export class AppReplicas extends pulumi.ComponentResource {
  readonly containers: docker.Container[];

  constructor(name: string, args: AppReplicasArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:AppReplicas', name, {}, opts);
    this.containers = [];
    let previous: docker.Container | undefined;
    for (let i = 1; i <= args.replicas; i++) {
      const replica: docker.Container = new docker.Container(
        `${args.prefix}-app-${i}`,
        {
          image: args.image,
          command: APP_COMMAND,
          envs: args.envs,
          uploads: args.uploads,
          networksAdvanced: [
            { name: args.edgeNetwork, aliases: [APP_ALIAS] },
            { name: args.dataNetwork },
            { name: args.metricsNetwork, aliases: [APP_METRICS_ALIAS] },
          ],
          healthcheck: httpProbe(`http://127.0.0.1:${APP_PORT}/health/live`),
          wait: true,
          waitTimeout: 120,
          restart: RESTART,
          user: 'node',
          init: true,
          ...UNPRIVILEGED,
          // Longer than the app's whole shutdown (the 30 s drain, the final writes, the exit), so
          // Docker's SIGKILL cuts neither open streams nor the last usage rows' write short.
          stopTimeout: APP_STOP_TIMEOUT_SECONDS,
          destroyGraceSeconds: APP_STOP_TIMEOUT_SECONDS,
          labels: labels(args.prefix, 'app'),
          ...LOGGING,
        },
        {
          parent: this,
          provider: args.provider,
          deleteBeforeReplace: false,
          dependsOn: previous === undefined ? args.dependsOn : [...args.dependsOn, previous],
        },
      );
      this.containers.push(replica);
      previous = replica;
    }
    this.registerOutputs({ containers: this.containers.map((c) => c.name) });
  }
}
