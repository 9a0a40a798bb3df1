import * as pulumi from '@pulumi/pulumi';

// The provisioning hooks run as `docker run --rm` of the app image on the appliance's own network,
// through the docker CLI of the machine running Pulumi, pointed at the target with DOCKER_HOST
// (the local socket or ssh://). The command line is a fixed string: image, network, volumes and
// every variable reach it through the command's environment (`-e NAME` copies NAME from there), so
// no value, and no secret, is ever part of a command line.

export interface DockerRunSpec {
  dockerHost: string;
  image: pulumi.Input<string>;
  /** A network name, or 'none'. */
  network: pulumi.Input<string>;
  volumes?: { volume: pulumi.Input<string>; path: string; readOnly?: boolean }[];
  /** Variables for the container (already checked against the app's schema), usually secret. */
  env?: pulumi.Input<Record<string, string>>;
  /** Names of the variables in `env`; known when the program runs, unlike their values. */
  envNames?: readonly string[];
  /** The container's command line (constants only: each word is quoted for the shell). */
  argv: readonly string[];
}

export interface ShellCommand {
  command: string;
  environment: pulumi.Output<Record<string, string>>;
  /** POSIX sh on the operator's machine (Linux, macOS, WSL). */
  interpreter: string[];
}

const NAME = /^[A-Z][A-Z0-9_]*$/;

/** Quotes one word for POSIX sh. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9._/:=@,+-]+$/.test(word) ? word : `'${word.split("'").join(`'\\''`)}'`;
}

/** Builds the shell command and its environment for one `docker run --rm`. */
export function dockerRun(spec: DockerRunSpec): ShellCommand {
  const names = spec.envNames ?? [];
  for (const name of names) if (!NAME.test(name)) throw new Error(`not a variable name: ${name}`);
  const volumes = spec.volumes ?? [];
  const words = [
    'exec docker run --rm',
    '--network "$GPT_PROXY_NETWORK"',
    ...volumes.map((v, i) => `--volume "$GPT_PROXY_VOLUME_${i}:${v.path}${v.readOnly ? ':ro' : ''}"`),
    ...names.map((name) => `--env ${name}`),
    '"$GPT_PROXY_IMAGE"',
    ...spec.argv.map(shellQuote),
  ];
  const own: Record<string, pulumi.Input<string>> = {
    DOCKER_HOST: spec.dockerHost,
    GPT_PROXY_IMAGE: spec.image,
    GPT_PROXY_NETWORK: spec.network,
  };
  volumes.forEach((v, i) => {
    own[`GPT_PROXY_VOLUME_${i}`] = v.volume;
  });
  const environment = pulumi
    .all([pulumi.output(own), pulumi.output(spec.env ?? {})])
    .apply(([ours, theirs]) => ({ ...theirs, ...ours }));
  return { command: words.join(' '), environment, interpreter: ['/bin/sh', '-c'] };
}
