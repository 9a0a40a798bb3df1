import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';
import type { AppSecrets } from './env.ts';

// The appliance's secrets. The three internal ones come from `pulumi config set --secret` when set;
// otherwise they are generated once by @pulumi/random and kept, encrypted, in the stack's state, so
// later runs reuse them. Every value leaves this file wrapped as a Pulumi secret.

const GENERATED = ['postgresPassword', 'redisPassword', 'encryptionKey'] as const;
type Generated = (typeof GENERATED)[number];

export interface ApplianceSecretsArgs {
  /** The stack's config bag (`gpt-proxy:` namespace). */
  config: pulumi.Config;
}

export class ApplianceSecrets extends pulumi.ComponentResource implements AppSecrets {
  readonly postgresPassword: pulumi.Output<string>;
  readonly redisPassword: pulumi.Output<string>;
  readonly encryptionKey: pulumi.Output<string>;
  readonly openaiApiKeys: pulumi.Output<string>;
  readonly azureApiKeys: pulumi.Output<string>;
  readonly encryptionKeyPrevious: pulumi.Output<string>;
  /** Which of the internal secrets were generated rather than configured. */
  readonly generated: readonly Generated[];

  constructor(name: string, args: ApplianceSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Secrets', name, {}, opts);
    const { config } = args;
    const generated: Generated[] = [];
    const configured = (key: Generated, generate: () => pulumi.Output<string>): pulumi.Output<string> => {
      // Only presence is looked at here; the value itself is read as a secret.
      if (config.get(key)) return pulumi.secret(config.requireSecret(key));
      generated.push(key);
      return pulumi.secret(generate());
    };
    const password = (key: Generated) =>
      new random.RandomPassword(`${name}-${key}`, { length: 32, special: false }, { parent: this }).result;

    this.postgresPassword = configured('postgresPassword', () => password('postgresPassword'));
    this.redisPassword = configured('redisPassword', () => password('redisPassword'));
    // 32 random bytes as 64 hex characters: exactly what the app's ENCRYPTION_KEY check demands.
    this.encryptionKey = configured(
      'encryptionKey',
      () => new random.RandomBytes(`${name}-encryptionKey`, { length: 32 }, { parent: this }).hex,
    );
    this.openaiApiKeys = optionalSecret(config, 'openaiApiKeys');
    this.azureApiKeys = optionalSecret(config, 'azureApiKeys');
    // Set only while ENCRYPTION_KEY is being rotated (docs/runbook.md): the key(s) it replaces.
    this.encryptionKeyPrevious = optionalSecret(config, 'encryptionKeyPrevious');
    this.generated = generated;
    this.registerOutputs({
      postgresPassword: this.postgresPassword,
      redisPassword: this.redisPassword,
      encryptionKey: this.encryptionKey,
    });
  }
}

/** A comma-separated key list from `pulumi config set --secret`, '' when unset; always secret. */
function optionalSecret(config: pulumi.Config, key: string): pulumi.Output<string> {
  return pulumi.secret(config.getSecret(key) ?? '');
}
