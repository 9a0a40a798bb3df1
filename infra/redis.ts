import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { LOGGING, labels, RESTART, shellProbe } from './containers.ts';
import { REDIS } from './env.ts';
import { envList, secretFiles } from './secret-files.ts';

// Redis: the official image on the internal `data` network only (alias `redis`, never published),
// as the image's `redis` user, with a password and an append-only file in a named volume.
// The password is an uploaded file (REDIS_PASSWORD_FILE, secret-files.ts). The shell's `read` and
// `printf` builtins turn it into a 0600 redis.conf line, so it is in no process's command line or
// environment; the health check reads it the same way and hands it to redis-cli via REDISCLI_AUTH.
// Replaced delete-first, like Postgres: one server per data directory.

export const START = [
  'umask 077',
  'read -r password < "$REDIS_PASSWORD_FILE"',
  'printf "requirepass %s\\n" "$password" > /tmp/redis-auth.conf',
  'exec redis-server /tmp/redis-auth.conf --dir /data --appendonly yes --appendfsync everysec',
].join(' && ');

/** The health check, run by the container's /bin/sh. */
export const HEALTH =
  'read -r REDISCLI_AUTH < "$REDIS_PASSWORD_FILE" && export REDISCLI_AUTH && redis-cli ping | grep -q PONG';

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
    const password = secretFiles({ REDIS_PASSWORD: checkedPassword(args.password) });
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.prefix}-redis`,
        image: args.image,
        user: 'redis',
        command: ['sh', '-c', START],
        envs: envList(password.env),
        uploads: password.uploads,
        volumes: [{ volumeName: args.volume, containerPath: '/data' }],
        networksAdvanced: [{ name: args.network, aliases: [REDIS.host] }],
        healthcheck: shellProbe(HEALTH, '10s'),
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
