import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as pulumi from '@pulumi/pulumi';
import type { Registration } from './registrations.ts';
import { PROJECT, projectFile, REPO, stackConfig } from './stack-files.ts';

// Runs the Pulumi program against Pulumi's mocks, loaded the way Pulumi's Node.js runtime loads it,
// and records every RegisterResource request exactly as the engine would receive it (options,
// dependencies and inputs with secrets still marked), the invokes, and the stack's outputs.

export const ADMIN_KEY = 'gpk_mock_admin_key_0123456789abcdef';
export const EXPIRES_AT = '2031-01-02T03:04:05.000Z';

export interface Deployment {
  resources: Registration[];
  calls: { token: string; inputs: Record<string, unknown> }[];
  outputs: Record<string, { value: unknown; secret: boolean }>;
  /** Every secret value the run saw: configured secrets and everything the mocks generated. */
  secretValues: string[];
}

// The subset of the gRPC request and monitor the recordings touch.
export interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
  getDeletebeforereplacedefined(): boolean;
  getIgnorechangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getRetainondelete(): boolean;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}
type Callback = (err: unknown, response?: { getUrn(): string }) => void;
interface Monitor {
  registerResource(req: RegisterRequest, callback: Callback): void;
}

/**
 * Calls `record` with every RegisterResource request the mocked engine accepted and the URN it
 * gave; call after `setMocks`, which installs the monitor this wraps.
 */
export function onRegistered(record: (req: RegisterRequest, urn: string) => void): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    register(req, (err, response) => {
      if (!err && response) record(req, response.getUrn());
      callback(err, response);
    });
  };
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function mocks(generated: string[], calls: Deployment['calls']): pulumi.runtime.Mocks {
  return {
    newResource(args) {
      const inputs = args.inputs as Record<string, unknown>;
      const state: Record<string, unknown> = { ...inputs };
      switch (args.type) {
        case 'random:index/randomPassword:RandomPassword':
          state.result = `mockpw${digest(args.name).slice(0, 26)}`;
          generated.push(String(state.result));
          break;
        case 'random:index/randomBytes:RandomBytes':
          state.hex = digest(args.name);
          generated.push(String(state.hex));
          break;
        case 'docker:index/remoteImage:RemoteImage':
          state.imageId = `mock-image-id:${String(inputs.name)}`;
          break;
        case 'docker:index/image:Image':
          state.repoDigest = `mock-build:${String(inputs.imageName)}`;
          break;
        case 'command:local:Command':
          state.stdout = args.name.endsWith('create-admin')
            ? JSON.stringify({ username: 'admin', email: 'e', created: true, apiKey: ADMIN_KEY })
            : '';
          break;
      }
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      calls.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
      return args.token === 'command:local:run' ? { stdout: `${EXPIRES_AT}\n`, stderr: '' } : {};
    },
  };
}

let runs = 0;

/**
 * What Pulumi's Node.js runtime does with this project (@pulumi/pulumi/cmd/run/run.js): `main`
 * from Pulumi.yaml is the program directory and becomes the working directory; the package is
 * ESM, so the directory's index.js, index.mjs, index.ts or index.mts (in that order) is loaded
 * with import(); its named exports (or its default export, never both) are the stack outputs.
 * A second run in one process imports the entry point under a query of its own, so it runs again
 * (the modules it imports hold no state).
 */
export async function importProgram(): Promise<Record<string, unknown>> {
  const programDir = resolve(REPO, projectFile().main ?? '.');
  process.chdir(programDir); // Pulumi passes it as --pwd
  const index = ['index.js', 'index.mjs', 'index.ts', 'index.mts'].find((f) =>
    existsSync(join(programDir, f)),
  );
  if (index === undefined) throw new Error(`No entrypoint found in ${programDir}`);
  const url = pathToFileURL(join(programDir, index)).href;
  runs += 1;
  const exported = (await import(runs === 1 ? url : `${url}?run=${runs}`)) as Record<string, unknown>;
  if ('default' in exported) {
    if (Object.keys(exported).length !== 1) throw new Error('both a default export and named exports');
    return exported.default as Record<string, unknown>;
  }
  return exported;
}

async function settle(value: unknown): Promise<{ value: unknown; secret: boolean }> {
  if (!pulumi.Output.isInstance(value)) return { value, secret: false };
  const secret = await pulumi.isSecret(value);
  const plain = await new Promise<unknown>((done) => value.apply((v) => done(v)));
  return { value: plain, secret };
}

/**
 * Runs the program for `stack` with its stack file's configuration plus `secrets` (as
 * `pulumi config set --secret` would give them) and `settings` (as plain `pulumi config set`
 * would, strings as the CLI passes them) and returns what it registered.
 */
export async function deploy(
  stack: string,
  secrets: Record<string, string> = {},
  settings: Record<string, string> = {},
): Promise<Deployment> {
  const generated: string[] = [];
  const calls: Deployment['calls'] = [];
  const resources: Registration[] = [];
  const config = stackConfig(stack);
  const secretKeys = Object.keys(secrets).map((k) => `${PROJECT}:${k}`);
  for (const [k, v] of Object.entries({ ...settings, ...secrets })) config[`${PROJECT}:${k}`] = v;

  await pulumi.runtime.setMocks(mocks(generated, calls), PROJECT, stack, false);
  pulumi.runtime.setAllConfig(config, secretKeys);
  onRegistered((req, urn) => {
    resources.push({
      type: req.getType(),
      name: req.getName(),
      urn,
      parent: req.getParent(),
      provider: req.getProvider(),
      dependencies: req.getDependenciesList(),
      deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
      ignoreChanges: req.getIgnorechangesList(),
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      retainOnDelete: req.getRetainondelete(),
      raw: req.getObject()?.toJavaScript() ?? {},
    });
  });

  const cwd = process.cwd();
  const exported = await importProgram();
  const outputs: Deployment['outputs'] = {};
  for (const [name, value] of Object.entries(exported)) outputs[name] = await settle(value);
  await pulumi.runtime.disconnect();
  process.chdir(cwd);
  const secretValues = [...Object.values(secrets), ...generated, ADMIN_KEY].filter((v) => v.length >= 8);
  return { resources, calls, outputs, secretValues };
}
