import { local } from '@pulumi/command';
import * as pulumi from '@pulumi/pulumi';
import { dockerRun } from './docker-run.ts';
import type { CheckedEnv } from './env.ts';

// The database hooks, in order: init-db → init-upstream-keys → create-admin. Each is a
// @pulumi/command Command, which runs its command when created and again whenever one of its
// inputs changes (environment included), so each one's inputs are exactly what should re-run it:
// - init-db: the digest of app/src/db/migrations and the Postgres container (a new, empty server
//   gets its schema); idempotent, so a re-run is harmless;
// - init-upstream-keys: its environment (the key lists and upstream settings, as secrets) and the
//   Postgres container;
// - create-admin: nothing. It runs once; every input is in ignoreChanges, because a second run
//   would find the user and print no key. The key it printed once is kept, secret, in the state
//   (its stdout is an additional secret output and is not logged) and becomes `adminApiKey`.

export const ADMIN_USERNAME = 'admin';

export interface ProvisioningHooksArgs {
  dockerHost: string;
  image: pulumi.Input<string>;
  /** The internal network Postgres is on. */
  network: pulumi.Input<string>;
  migrationsDigest: string;
  postgres: pulumi.CustomResource;
  /** Checked environments (env.ts) with the names of their variables. */
  initDbEnv: CheckedEnv;
  upstreamKeysEnv: CheckedEnv;
  createAdminEnv: CheckedEnv;
  adminEmail: string;
  dependsOn: pulumi.Resource[];
}

export class ProvisioningHooks extends pulumi.ComponentResource {
  readonly initDb: local.Command;
  readonly initUpstreamKeys: local.Command;
  readonly createAdmin: local.Command;
  /** The first admin's API key, shown once by create-admin; '' if the user already existed. */
  readonly adminApiKey: pulumi.Output<string>;

  constructor(name: string, args: ProvisioningHooksArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:ProvisioningHooks', name, {}, opts);
    const run = (env: CheckedEnv, argv: string[]) => {
      const { command, environment, interpreter } = dockerRun({
        dockerHost: args.dockerHost,
        image: args.image,
        network: args.network,
        env: env.values,
        envNames: env.names,
        argv,
      });
      return { create: command, environment, interpreter };
    };

    this.initDb = new local.Command(
      `${name}-init-db`,
      {
        ...run(args.initDbEnv, ['node', 'dist/scripts/init-db.js', '--wait', '120']),
        triggers: [args.migrationsDigest, args.postgres.id],
      },
      { parent: this, dependsOn: [...args.dependsOn, args.postgres] },
    );
    this.initUpstreamKeys = new local.Command(
      `${name}-init-upstream-keys`,
      {
        ...run(args.upstreamKeysEnv, ['node', 'dist/scripts/init-upstream-keys.js', '--wait', '120']),
        triggers: [args.postgres.id],
      },
      { parent: this, dependsOn: [this.initDb] },
    );
    this.createAdmin = new local.Command(
      `${name}-create-admin`,
      {
        ...run(args.createAdminEnv, [
          'node',
          'dist/scripts/create-admin.js',
          '--username',
          ADMIN_USERNAME,
          '--email',
          args.adminEmail,
          '--json',
          '--wait',
          '120',
        ]),
        logging: 'stderr',
      },
      {
        parent: this,
        dependsOn: [this.initUpstreamKeys],
        ignoreChanges: ['create', 'environment', 'interpreter', 'logging', 'triggers'],
        additionalSecretOutputs: ['stdout'],
      },
    );
    this.adminApiKey = pulumi.secret(this.createAdmin.stdout.apply(adminKeyFrom));
    this.registerOutputs({ adminApiKey: this.adminApiKey });
  }
}

/** The `apiKey` of create-admin's `--json` line, or '' when it created no user (it existed). */
export function adminKeyFrom(stdout: string): string {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed: unknown = JSON.parse(line);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'apiKey' in parsed &&
      typeof parsed.apiKey === 'string'
    ) {
      return parsed.apiKey;
    }
  } catch {
    // Not JSON: no key to report.
  }
  return '';
}
