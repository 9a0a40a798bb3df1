import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one of the provisioning commands (scripts/NAME.ts) as its own process with exactly the
 * given environment (plus PATH/HOME), the way a deploy hook runs it, and collects its output.
 */
export function runScript(name: string, args: string[], env: Record<string, string>): Promise<ScriptResult> {
  return runCommand(process.execPath, [`scripts/${name}.ts`, ...args], {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...env,
  });
}

/**
 * Runs `command` with exactly `env`, from the repository's root, feeding it `stdin` (or nothing),
 * and collects its output; killed after a minute.
 */
export function runCommand(
  command: string,
  args: string[],
  env: Record<string, string>,
  stdin?: Buffer,
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a command that exits without reading its input
    child.stdin.end(stdin);
  });
}
