/**
 * The `docker` client pointed at the test bed's own engine. Every call has a time limit, never
 * reads the user's ~/.docker configuration (an empty DOCKER_CONFIG), never uses BuildKit (the
 * engine's classic builder needs no buildx plugin) and fails with the command and the tail of
 * its stderr, so a failing test says which docker command broke and why.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface DockerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface DockerRunOptions {
  /** Kill the client after this long (default 60 s); the call then fails. */
  timeoutMs?: number;
  /** Written to the client's stdin (e.g. a tar stream for `docker import -`). */
  input?: string | Buffer | NodeJS.ReadableStream;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Extra environment for the client. */
  env?: NodeJS.ProcessEnv;
  /** Called with every chunk of output (build logs go to a file this way). */
  onOutput?: (chunk: Buffer) => void;
}

export interface DockerCli {
  /** unix:///…/docker.sock of the test bed's engine. */
  readonly host: string;
  /** Runs `docker ARGS`; resolves with the output, throws on a non-zero exit unless allowed. */
  run(args: readonly string[], options?: DockerRunOptions): Promise<DockerResult>;
  /** Runs `docker ARGS` and returns its trimmed stdout. */
  text(args: readonly string[], options?: DockerRunOptions): Promise<string>;
  /** The environment a child `docker` (or a script calling it) needs to reach the engine. */
  env(): NodeJS.ProcessEnv;
}

const KEEP = 64 * 1024;

/** A client for the engine listening on `host`; `configDir` becomes its DOCKER_CONFIG. */
export function dockerCli(host: string, configDir: string): DockerCli {
  mkdirSync(configDir, { recursive: true });
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    DOCKER_HOST: host,
    DOCKER_CONFIG: configDir,
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  });

  const run = (args: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> =>
    new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 60_000;
      const child = spawn('docker', args, {
        env: { ...env(), ...options.env },
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        options.onOutput?.(chunk);
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString('utf8')).slice(-KEEP);
        options.onOutput?.(chunk);
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`docker ${args.join(' ')}: ${err.message}`, { cause: err }));
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        const result = { code, stdout, stderr };
        if (timedOut) {
          reject(new Error(`docker ${describe(args)}: no answer within ${timeoutMs} ms\n${tail(stderr)}`));
        } else if (code !== 0 && !options.allowFailure) {
          reject(new Error(`docker ${describe(args)} exited with ${code}\n${tail(stderr || stdout)}`));
        } else {
          resolve(result);
        }
      });
      const input = options.input;
      if (input !== undefined && child.stdin) {
        child.stdin.on('error', () => {}); // the client may exit before reading everything
        if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
        else input.pipe(child.stdin);
      }
    });

  return {
    host,
    run,
    text: async (args, options) => (await run(args, options)).stdout.trim(),
    env,
  };
}

/** Arguments for a message: values of `-e NAME=VALUE` are hidden (they may be passwords). */
function describe(args: readonly string[]): string {
  return args
    .map((arg, i) => (args[i - 1] === '-e' || args[i - 1] === '--env' ? hideValue(arg) : arg))
    .join(' ');
}

function hideValue(assignment: string): string {
  const eq = assignment.indexOf('=');
  return eq < 0 ? assignment : `${assignment.slice(0, eq)}=…`;
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Where the client's configuration lives below a state directory. */
export function cliConfigDir(stateDir: string): string {
  return join(stateDir, 'client-config');
}
