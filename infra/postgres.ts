import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { DEFAULT_DB_POOL_SIZE } from '../app/src/config/schema.ts';
import { APP_REPLICAS_MAX } from './config.ts';
import { LOGGING, labels, RESTART, shellProbe } from './containers.ts';
import { DB } from './env.ts';
import { envList, secretFiles } from './secret-files.ts';

// Postgres: the official image on the internal `data` network only (alias `postgres`, never
// published), its data in a named volume, healthy once it accepts connections. The password is a
// file (POSTGRES_PASSWORD_FILE, secret-files.ts). It is replaced delete-first: two servers must
// never open the same data directory.

/**
 * Every replica's pool (the app's default DB_POOL_SIZE: infra sets none) twice over, since a
 * `pulumi up` replaces the replicas create-before-delete and the old ones keep their connections
 * until all new ones are up; for the most replicas a stack may run, so that changing appReplicas
 * never restarts Postgres; and 20 more for the backup container, a hook and an operator's psql.
 * Each allowed connection costs Postgres about 40 kB of its main shared memory (143 MB at 100,
 * 158 MB at 420), an anonymous mapping: /dev/shm (shmSize, for parallel queries) is not involved.
 */
export const POSTGRES_MAX_CONNECTIONS = 2 * APP_REPLICAS_MAX * DEFAULT_DB_POOL_SIZE + 20;

export interface PostgresArgs {
  provider: docker.Provider;
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  volume: pulumi.Input<string>;
  password: pulumi.Output<string>;
}

export class Postgres extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Postgres', name, {}, opts);
    const password = secretFiles({ POSTGRES_PASSWORD: args.password });
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.prefix}-postgres`,
        image: args.image,
        // The image starts as root only to fix ownership; the data volume is created from the
        // image's own directory (owned by postgres), so it can run as postgres from the start.
        user: 'postgres',
        envs: envList({ POSTGRES_USER: DB.user, POSTGRES_DB: DB.name, ...password.env }),
        uploads: password.uploads,
        volumes: [{ volumeName: args.volume, containerPath: '/var/lib/postgresql/data' }],
        networksAdvanced: [{ name: args.network, aliases: [DB.host] }],
        healthcheck: shellProbe(`pg_isready -q -h 127.0.0.1 -U ${DB.user} -d ${DB.name}`),
        wait: true,
        waitTimeout: 180,
        restart: RESTART,
        stopTimeout: 60,
        destroyGraceSeconds: 60,
        shmSize: 128,
        // The image's entrypoint initialises an empty volume, then runs this command.
        command: ['postgres', '-c', `max_connections=${POSTGRES_MAX_CONNECTIONS}`],
        labels: labels(args.prefix, 'postgres'),
        ...LOGGING,
      },
      { parent: this, provider: args.provider, deleteBeforeReplace: true },
    );
    this.registerOutputs({ name: this.container.name });
  }
}
