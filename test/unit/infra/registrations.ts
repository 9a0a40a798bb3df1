import { readFileSync } from 'node:fs';
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
