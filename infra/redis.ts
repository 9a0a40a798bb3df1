import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { LOGGING, labels, RESTART, shellProbe } from './containers.ts';
import { REDIS } from './env.ts';

// Redis: the official image on the internal `data` network only (alias `redis`, never published),
// as the image's `redis` user, with a password and an append-only file in a named volume.
// The password reaches redis-server through a 0600 file written by the shell's printf builtin, so
// it is in no process's command line; the health check hands it to redis-cli via REDISCLI_AUTH.
// Replaced delete-first, like Postgres: one server per data directory.

const START = [
  'umask 077',
  'printf "requirepass %s\\n" "$REDIS_PASSWORD" > /tmp/redis-auth.conf',
  'exec redis-server /tmp/redis-auth.conf --dir /data --appendonly yes --appendfsync everysec',
].join(' && ');

// The password becomes one word of a redis.conf line: no spaces, quotes or backslashes.
const PASSWORD = /^[A-Za-z0-9._~!@#%^&*+=:,/?-]+$/;

/** The password, refused (without echoing it) if redis.conf could not hold it as one word. */
function checkedPassword(password: pulumi.Output<string>): pulumi.Output<string> {
  return password.apply((p) => {
    if (PASSWORD.test(p)) return p;
    throw new Error(
      'redisPassword: use only letters, digits and ._~!@#%^&*+=:,/?- (it goes into redis.conf)',
    );
  });
}

export interface RedisArgs {
  provider: docker.Provider;
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  volume: pulumi.Input<string>;
  password: pulumi.Output<string>;
}

export class Redis extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Redis', name, {}, opts);
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.prefix}-redis`,
        image: args.image,
        user: 'redis',
        command: ['sh', '-c', START],
        envs: pulumi.secret(checkedPassword(args.password).apply((p) => [`REDIS_PASSWORD=${p}`])),
        volumes: [{ volumeName: args.volume, containerPath: '/data' }],
        networksAdvanced: [{ name: args.network, aliases: [REDIS.host] }],
        healthcheck: shellProbe('REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG', '10s'),
        wait: true,
        waitTimeout: 120,
        restart: RESTART,
        stopTimeout: 30,
        destroyGraceSeconds: 30,
        labels: labels(args.prefix, 'redis'),
        ...LOGGING,
      },
      { parent: this, provider: args.provider, deleteBeforeReplace: true },
    );
    this.registerOutputs({ name: this.container.name });
  }
}
