/**
 * The capture step: runs the Pulumi program under mocks with a stack's configuration, in a child
 * process (capture-child.ts), and returns every resource it registered with its resolved inputs.
 * The configuration is what the Pulumi CLI would hand the program: Pulumi.yaml's defaults,
 * overridden by the stack's settings (objects as JSON, everything a string), secrets marked.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { registerTempDir, unregisterTempDir } from '../../helpers/processes.ts';
import { PROJECT, projectFile, REPO } from '../../unit/infra/stack-files.ts';
import type { CaptureRequest } from './capture-child.ts';
import type { Capture } from './types.ts';

const CHILD = fileURLToPath(new URL('./capture-child.ts', import.meta.url));
const TIMEOUT_MS = 120_000;

export interface StackSettings {
  stack: string;
  /** Plain settings (`pulumi config set`); objects such as `images` as objects. */
  config: Record<string, string | number | boolean | object>;
  /** `pulumi config set --secret` values. */
  secrets: Record<string, string>;
  /** Makes @pulumi/random's values the same on every capture (as a stack's state keeps them). */
  seed: string;
}

function asConfigString(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** Pulumi.yaml's defaults overridden by `settings`, as `gpt-proxy:key` strings. */
export function programConfig(settings: StackSettings): CaptureRequest {
  const config: Record<string, string> = {};
  for (const [key, decl] of Object.entries(projectFile().config)) {
    if (decl.default !== undefined) config[`${PROJECT}:${key}`] = asConfigString(decl.default);
  }
  for (const [key, value] of Object.entries({ ...settings.config, ...settings.secrets })) {
    config[`${PROJECT}:${key}`] = asConfigString(value);
  }
  const secretKeys = Object.keys(settings.secrets).map((key) => `${PROJECT}:${key}`);
  return { stack: settings.stack, config, secretKeys, seed: settings.seed };
}

/** This process's environment minus the test runner's marker (the child is a plain program). */
function childEnv(): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return env;
}

/** Runs the program under the applier's mocks and returns what it registered. */
export async function captureProgram(settings: StackSettings): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'gpt-proxy-capture-'));
  chmodSync(dir, 0o700); // the request and the result hold the stack's secrets
  registerTempDir(dir);
  try {
    const requestFile = join(dir, 'request.json');
    const resultFile = join(dir, 'result.json');
    writeFileSync(requestFile, JSON.stringify(programConfig(settings)), { mode: 0o600 });
    try {
      await promisify(execFile)(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', CHILD, requestFile, resultFile],
        {
          cwd: REPO,
          env: childEnv(),
          timeout: TIMEOUT_MS,
          killSignal: 'SIGKILL',
          maxBuffer: 16 * 1024 * 1024,
        },
      );
    } catch (err) {
      const { stderr = '', stdout = '' } = err as { stderr?: string; stdout?: string };
      const tail = `${stdout}${stderr}`.trimEnd().split('\n').slice(-30).join('\n');
      throw new Error(`applier: running the Pulumi program under mocks failed:\n${tail}`);
    }
    return JSON.parse(readFileSync(resultFile, 'utf8')) as Capture;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    unregisterTempDir(dir);
  }
}
