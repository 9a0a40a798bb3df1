import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// Reads Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI turns them into the program's
// configuration: project defaults, overridden by the stack file, every value a string (objects as
// JSON), declared types checked, a declared key without default or stack value an error.

// js-yaml comes with @pulumi/pulumi (it has no types of its own here).
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const PROJECT = 'gpt-proxy';

export interface ConfigDeclaration {
  type?: 'string' | 'integer' | 'boolean' | 'array';
  default?: unknown;
  description?: string;
  secret?: boolean;
}

export interface ProjectFile {
  name: string;
  main?: string;
  runtime: string | { name: string; options?: Record<string, unknown> };
  config: Record<string, ConfigDeclaration>;
}

export function readYaml(file: string): unknown {
  return yaml.load(readFileSync(`${REPO}${file}`, 'utf8'));
}

export function projectFile(): ProjectFile {
  return readYaml('Pulumi.yaml') as ProjectFile;
}

function asConfigString(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** The `gpt-proxy:*` configuration a stack's program receives, before secrets are added. */
export function stackConfig(stack: string): Record<string, string> {
  const project = projectFile();
  const stackFile = (readYaml(`Pulumi.${stack}.yaml`) ?? {}) as { config?: Record<string, unknown> };
  const result: Record<string, string> = {};
  for (const [key, decl] of Object.entries(project.config)) {
    if (decl.default !== undefined) result[`${PROJECT}:${key}`] = asConfigString(decl.default);
  }
  for (const [key, value] of Object.entries(stackFile.config ?? {})) {
    if (typeof value === 'object' && value !== null && 'secure' in value) {
      throw new Error(`${key}: an example stack file must not carry an encrypted value`);
    }
    result[key] = asConfigString(value);
  }
  for (const [key, decl] of Object.entries(project.config)) {
    const value = result[`${PROJECT}:${key}`];
    if (value === undefined) throw new Error(`Stack '${stack}' is missing configuration value '${key}'`);
    if (decl.type === 'integer' && !/^-?\d+$/.test(value))
      throw new Error(`${key} must be of type 'integer'`);
    if (decl.type === 'boolean' && !/^(true|false)$/.test(value))
      throw new Error(`${key} must be of type 'boolean'`);
  }
  return result;
}
