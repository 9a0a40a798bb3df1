import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Deployment } from './harness.ts';
import { REPO } from './stack-files.ts';

// Reading what the program registered: inputs with or without their secret markers, lookups.

// How the Pulumi SDK marks a secret value in serialized inputs.
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

export interface Registration {
  type: string;
  name: string;
  urn: string;
  parent: string;
  provider: string;
  dependencies: string[];
  deleteBeforeReplace: boolean | undefined;
  ignoreChanges: string[];
  additionalSecretOutputs: string[];
  retainOnDelete: boolean;
  /** Inputs as serialized for the engine: secrets are still `{<sig>, value}` wrappers. */
  raw: Record<string, unknown>;
}

export function isSecretWrapper(value: unknown): value is { value: unknown } {
  return typeof value === 'object' && value !== null && SECRET_SIG in value;
}

/** The inputs with every secret wrapper replaced by its value. */
export function plain(value: unknown): unknown {
  if (isSecretWrapper(value)) return plain(value.value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** Every string in `value` that is not inside a secret wrapper, with its path. */
export function plainStrings(value: unknown, path = ''): { path: string; text: string }[] {
  if (isSecretWrapper(value)) return [];
  if (typeof value === 'string') return [{ path, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => plainStrings(v, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => plainStrings(v, path === '' ? k : `${path}.${k}`));
  }
  return [];
}

export function inputs(r: Registration): Record<string, unknown> {
  return plain(r.raw) as Record<string, unknown>;
}

export function ofType(d: Deployment, type: string): Registration[] {
  return d.resources.filter((r) => r.type === type);
}

/** The one resource of `type` whose logical name ends with `suffix`. */
export function one(d: Deployment, type: string, suffix: string): Registration {
  const found = ofType(d, type).filter((r) => r.name.endsWith(suffix));
  if (found.length !== 1) throw new Error(`expected one ${type} named *${suffix}, found ${found.length}`);
  return found[0] as Registration;
}

export interface Upload {
  file: string;
  content?: string;
  contentBase64?: string;
  executable?: boolean;
  permissions?: string;
}

/** A container's uploads, contents unwrapped. */
export function uploadsOf(r: Registration): Upload[] {
  return (inputs(r).uploads ?? []) as Upload[];
}

/** The upload at `file` as the engine receives it: a secret content is still a wrapper. */
export function rawUpload(r: Registration, file: string): Record<string, unknown> | undefined {
  const list = (r.raw.uploads ?? []) as Record<string, unknown>[];
  return list.find((u) => plain(u.file) === file);
}

/**
 * The secret a container reads from the file its `variable + suffix` names (the trailing newline
 * dropped, as every reader does); throws when the variable or the upload is missing.
 */
export function fileSecret(r: Registration, variable: string, suffix = '_FILE'): string {
  const path = envOf(r)[`${variable}${suffix}`];
  if (path === undefined) throw new Error(`${r.name}: no ${variable}${suffix}`);
  const upload = uploadsOf(r).find((u) => u.file === path);
  if (upload?.content === undefined) throw new Error(`${r.name}: nothing uploaded at ${path}`);
  return upload.content.replace(/\n$/, '');
}

/**
 * The container's environment as its program reads it: its uploads written below `dir` and each
 * variable naming one pointed there, so the app's own NAME_FILE handling reads them.
 */
export function materialized(r: Registration, dir: string): Record<string, string> {
  const uploads = uploadsOf(r);
  const env = envOf(r);
  for (const [name, value] of Object.entries(env)) {
    const upload = uploads.find((u) => u.file === value);
    if (upload === undefined) continue;
    const path = join(dir, r.name, upload.file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, upload.content ?? Buffer.from(upload.contentBase64 ?? '', 'base64'));
    env[name] = path;
  }
  return env;
}

/** `KEY=value` list → object. */
export function envOf(r: Registration): Record<string, string> {
  const list = (inputs(r).envs ?? []) as string[];
  return Object.fromEntries(list.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

export const TYPES = {
  provider: 'pulumi:providers:docker',
  network: 'docker:index/network:Network',
  volume: 'docker:index/volume:Volume',
  remoteImage: 'docker:index/remoteImage:RemoteImage',
  image: 'docker:index/image:Image',
  container: 'docker:index/container:Container',
  command: 'command:local:Command',
  password: 'random:index/randomPassword:RandomPassword',
  bytes: 'random:index/randomBytes:RandomBytes',
} as const;

export function readRepoFile(path: string): string {
  return readFileSync(`${REPO}${path}`, 'utf8');
}
