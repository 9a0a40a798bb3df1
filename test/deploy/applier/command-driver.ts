/**
 * @pulumi/command's local.Command, run for real: its `create` through its `interpreter` (default
 * `/bin/sh -c`) with the environment of the machine running Pulumi plus its own `environment`,
 * stdout and stderr kept as its outputs (never logged: create-admin's stdout is a secret). A
 * non-zero exit fails the apply with the command's stderr tail (the project's scripts keep
 * secrets out of stderr). `triggers` and `logging` only matter for deciding when it runs again
 * and what Pulumi would print. The same runner serves `command:local:run` invokes.
 */
import { spawn } from 'node:child_process';
import { registerProcess, unregisterProcess } from '../../helpers/processes.ts';
import type { Driver, DriverContext } from './driver.ts';
import { type InputReader, refuse } from './inputs.ts';

const KEEP = 1024 * 1024;

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs `command` with `interpreter` and `environment`; throws on a non-zero exit or a timeout. */
export function runShell(
  ctx: DriverContext,
  what: string,
  spec: { command: string; interpreter: string[]; environment: Record<string, string> },
): Promise<CommandResult> {
  const [program, ...args] = spec.interpreter;
  if (program === undefined) throw new Error(`${what}: empty interpreter`);
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args, spec.command], {
      env: { ...ctx.hookEnv, ...spec.environment },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Killed by PID if the test process exits while the hook still runs.
    if (child.pid !== undefined) registerProcess(child.pid, what);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), ctx.maxWaitMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = (stdout + chunk.toString('utf8')).slice(-KEEP);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-KEEP);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) unregisterProcess(child.pid);
      if (code === 0) {
        resolve({ stdout: stdout.replace(/\n$/, ''), stderr: stderr.replace(/\n$/, '') });
        return;
      }
      const tail = stderr.trimEnd().split('\n').slice(-20).join('\n');
      const how = signal ? `was killed (${signal}, limit ${ctx.maxWaitMs} ms)` : `exited with ${code}`;
      reject(new Error(`${what} ${how}\n--- its stderr (end) ---\n${tail}`));
    });
  });
}

/** The command, interpreter and environment of a Command or a `command:local:run` invoke. */
export function shellSpec(inputs: InputReader) {
  return {
    command: inputs.requireString('create' in inputs.values ? 'create' : 'command'),
    interpreter: inputs.strings('interpreter') ?? ['/bin/sh', '-c'],
    environment: inputs.record('environment') ?? {},
  };
}

export const commandDriver: Driver = {
  docker: false,
  check(inputs) {
    inputs.only(['create', 'environment', 'interpreter', 'triggers', 'logging']);
    shellSpec(inputs);
    if (!Array.isArray(inputs.values.triggers ?? [])) refuse(inputs.resource, 'triggers', 'is not a list');
  },
  async create(ctx, inputs, name) {
    const result = await runShell(ctx, `command ${name}`, shellSpec(inputs));
    return { id: name, stdout: result.stdout, stderr: result.stderr };
  },
  // No `delete` command is translated, so removing one runs nothing (as Pulumi does).
  async delete() {},
};

/** Invokes the applier runs after the resources: `command:local:run` only. */
export function checkInvoke(inputs: InputReader, token: string): void {
  if (token !== 'command:local:run') refuse(inputs.resource, '(token)', `${token} is not translated`);
  inputs.only(['command', 'environment', 'interpreter']);
  shellSpec(inputs);
}
