/**
 * Containers and networks on the test engine, as the tests need them: `docker run -d` from a small
 * spec (network aliases, environment, user, volumes, ports published on 127.0.0.1 only) and a
 * handle to reach, inspect and remove the container; networks are user-defined bridges with a
 * pinned subnet, the first free /24 of the engine's address pool.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DockerCli, DockerResult } from './cli.ts';
import { TEST_ADDRESS_POOL } from './paths.ts';

export interface RunSpec {
  name: string;
  image: string;
  network?: string;
  aliases?: string[];
  env?: Record<string, string>;
  user?: string;
  /** Container ports to publish, each on a free port of 127.0.0.1 (see Container.hostPort). */
  publish?: number[];
  /** `-v` values: `VOLUME:/path[:ro]`. */
  volumes?: string[];
  /** Further `docker run` options, before the image. */
  options?: string[];
  /** The command (replaces the image's CMD). */
  command?: string[];
  /** Files put into the container before it starts (like Pulumi's `uploads`), owned by root. */
  files?: ContainerFile[];
}

export interface ContainerFile {
  /** Absolute path in the container; missing parent directories are created (0755). */
  path: string;
  content: string;
  /** Default 0o644. */
  mode?: number;
}

export interface Container {
  readonly name: string;
  /** The port of 127.0.0.1 that Docker published `containerPort` on. */
  hostPort(containerPort: number): Promise<number>;
  exec(command: string[], options?: { user?: string; allowFailure?: boolean }): Promise<DockerResult>;
  /** `docker inspect --format FORMAT`. */
  inspect(format: string): Promise<string>;
  /** stdout and stderr of the container so far (for assertions and failure messages). */
  logs(): Promise<string>;
  remove(): Promise<void>;
}

/** `docker run -d` (create, copy `files` in, start, when there are files). */
export async function runContainer(cli: DockerCli, spec: RunSpec): Promise<Container> {
  const files = spec.files ?? [];
  const args = files.length > 0 ? ['create', '--name', spec.name] : ['run', '--detach', '--name', spec.name];
  if (spec.network) args.push('--network', spec.network);
  for (const alias of spec.aliases ?? []) args.push('--network-alias', alias);
  for (const [key, value] of Object.entries(spec.env ?? {})) args.push('--env', `${key}=${value}`);
  if (spec.user) args.push('--user', spec.user);
  for (const volume of spec.volumes ?? []) args.push('--volume', volume);
  for (const port of spec.publish ?? []) args.push('--publish', `127.0.0.1::${port}`);
  args.push(...(spec.options ?? []), spec.image, ...(spec.command ?? []));
  await cli.run(args, { timeoutMs: 120_000 });
  if (files.length > 0) {
    await copyFiles(cli, spec.name, files);
    await cli.run(['start', spec.name], { timeoutMs: 120_000 });
  }
  return containerHandle(cli, spec.name);
}

/** Streams the files as a tar of file entries only (so no existing directory changes) to `docker cp`. */
async function copyFiles(cli: DockerCli, name: string, files: ContainerFile[]): Promise<void> {
  const staging = mkdtempSync(join(tmpdir(), 'gpt-proxy-docker-files-'));
  try {
    const members = files.map((file) => {
      if (!file.path.startsWith('/')) throw new Error(`${name}: file path ${file.path} is not absolute`);
      const member = file.path.slice(1);
      mkdirSync(dirname(join(staging, member)), { recursive: true });
      writeFileSync(join(staging, member), file.content);
      chmodSync(join(staging, member), file.mode ?? 0o644);
      return member;
    });
    const tar = spawn(
      'tar',
      ['-c', '-C', staging, '--owner=0', '--group=0', '--numeric-owner', '-f', '-', ...members],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await cli.run(['cp', '-', `${name}:/`], { input: tar.stdout, timeoutMs: 60_000 });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

export function containerHandle(cli: DockerCli, name: string): Container {
  return {
    name,
    hostPort: async (containerPort) => {
      const out = await cli.text(['port', name, `${containerPort}/tcp`]);
      const match = /^127\.0\.0\.1:(\d+)$/m.exec(out);
      if (!match?.[1])
        throw new Error(`${name}: port ${containerPort} is not published on 127.0.0.1 (${out})`);
      return Number(match[1]);
    },
    exec: (command, options = {}) =>
      cli.run(['exec', ...(options.user ? ['--user', options.user] : []), name, ...command], {
        timeoutMs: 60_000,
        allowFailure: options.allowFailure ?? false,
      }),
    inspect: (format) => cli.text(['inspect', '--format', format, name]),
    logs: async () => {
      const { stdout, stderr } = await cli.run(['logs', name], { allowFailure: true, timeoutMs: 30_000 });
      return `${stdout}${stderr}`;
    },
    remove: async () => {
      await cli.run(['rm', '--force', '--volumes', name], { allowFailure: true, timeoutMs: 60_000 });
    },
  };
}

export interface TestNetwork {
  name: string;
  subnet: string;
}

/** A bridge network on the first /24 of the test address pool that no network uses yet. */
export async function createNetwork(
  cli: DockerCli,
  name: string,
  options: { internal?: boolean } = {},
): Promise<TestNetwork> {
  const used = new Set((await networkSubnets(cli)).map((subnet) => subnet.split('/')[0]));
  const [a, b] = TEST_ADDRESS_POOL.base.split('.');
  for (let third = 1; third < 255; third++) {
    const subnet = `${a}.${b}.${third}.0/${TEST_ADDRESS_POOL.size}`;
    if (used.has(`${a}.${b}.${third}.0`)) continue;
    const args = ['network', 'create', '--driver', 'bridge', '--subnet', subnet];
    if (options.internal) args.push('--internal');
    await cli.run([...args, name]);
    return { name, subnet };
  }
  throw new Error(`no free /${TEST_ADDRESS_POOL.size} left in ${TEST_ADDRESS_POOL.base}`);
}

async function networkSubnets(cli: DockerCli): Promise<string[]> {
  const ids = (await cli.text(['network', 'ls', '--quiet', '--filter', 'type=custom']))
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  const out = await cli.text([
    'network',
    'inspect',
    '--format',
    '{{range .IPAM.Config}}{{.Subnet}} {{end}}',
    ...ids,
  ]);
  return out.split(/\s+/).filter(Boolean);
}
