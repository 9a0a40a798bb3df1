import type * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';

// Secrets reach the long-running containers as files, not as environment variables: a container's
// environment is shown by `docker inspect` to anyone with the Docker socket (and in every support
// ticket it is pasted into), and every child process inherits it. Each secret is uploaded into
// the container before it starts (the docker provider's `uploads`, the content a Pulumi secret)
// and the environment only names the file, as NAME_FILE: the convention of the app
// (app/src/config/env.ts) and of the official images. An upload is one of the container's
// inputs, so a changed secret still replaces the container that uses it.

export const SECRETS_DIR = '/run/secrets';

/**
 * Root-owned (no owner is given, so the archive says uid 0) and read-only. Readable by all because
 * an owner would have to be the numeric uid of each image's user, which differs between variants
 * of one image (postgres: 999 on Debian, 70 on Alpine); each container runs only its own service.
 */
export const SECRET_MODE = '0444';

export interface SecretFiles {
  /** `NAME_FILE` → path for each secret: all the environment says of it. */
  env: Record<string, string>;
  uploads: docker.types.input.ContainerUpload[];
}

/** `/run/secrets/NAME` with NAME the variable in lower case and dashes: POSTGRES_PASSWORD → postgres-password. */
function secretPath(variable: string): string {
  return `${SECRETS_DIR}/${variable.toLowerCase().replaceAll('_', '-')}`;
}

/** One secret upload. `content` is wrapped as a Pulumi secret here, whatever it was. */
export function secretUpload(
  file: string,
  content: pulumi.Input<string>,
  permissions = SECRET_MODE,
): docker.types.input.ContainerUpload {
  return { file, content: pulumi.secret(content), permissions };
}

/**
 * Each secret as a file of its own and `NAME${suffix}` naming it (Grafana's suffix is `__FILE`).
 * The content ends with a newline, as a text file does; every reader here drops it (the app, the
 * images' `$(< file)`, `read`). It also keeps an unset secret ('') from being an empty upload,
 * which the provider refuses; the app reads a file holding only the newline as unset.
 */
export function secretFiles(secrets: Record<string, pulumi.Input<string>>, suffix = '_FILE'): SecretFiles {
  const env: Record<string, string> = {};
  const uploads: docker.types.input.ContainerUpload[] = [];
  for (const [variable, value] of Object.entries(secrets)) {
    const path = secretPath(variable);
    env[`${variable}${suffix}`] = path;
    const content = pulumi.output(value).apply((v) => `${v}\n`);
    uploads.push(secretUpload(path, content));
  }
  return { env, uploads };
}

/** Docker's `KEY=value` list. */
export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
