/**
 * The Debian base every stand-in is built on, since no registry (and so no debian:bookworm image)
 * is reachable: `debootstrap --variant=minbase bookworm` from Debian's mirror (debootstrap's
 * default), trimmed by images/debian/prepare-rootfs.sh, and imported with `docker import` as a
 * one-layer image whose command is bash, like the official debian image.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DockerCli } from './cli.ts';
import { removeTree } from './mounts.ts';

export const DEBIAN = { suite: 'bookworm', variant: 'minbase' } as const;

/** Bootstraps into `workDir/rootfs` (removed afterwards) and imports the tree as `tag`. */
export async function buildDebianBase(
  cli: DockerCli,
  tag: string,
  labels: Record<string, string>,
  prepareScript: string,
  workDir: string,
  logFile: string,
): Promise<void> {
  const rootfs = join(workDir, 'rootfs');
  removeTree(workDir);
  mkdirSync(workDir, { recursive: true });
  const log = createWriteStream(logFile);
  try {
    await step(['debootstrap', `--variant=${DEBIAN.variant}`, DEBIAN.suite, rootfs], log, 15 * 60_000);
    await step(['sh', prepareScript, rootfs], log, 60_000);
    const tar = spawn('tar', ['--numeric-owner', '-C', rootfs, '-cf', '-', '.'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    tar.stderr.pipe(log, { end: false });
    const changes = [
      'CMD ["bash"]',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...Object.entries(labels).map(([k, v]) => `LABEL ${k}=${v}`),
    ];
    const tarExit = new Promise<number | null>((resolve) => tar.once('close', resolve));
    await cli.run(['import', ...changes.flatMap((c) => ['--change', c]), '-', tag], {
      input: tar.stdout,
      timeoutMs: 10 * 60_000,
      onOutput: (chunk) => log.write(chunk),
    });
    const code = await tarExit;
    if (code !== 0) throw new Error(`tar of the bootstrapped tree exited with ${code} (see ${logFile})`);
  } finally {
    log.end();
    removeTree(workDir);
  }
}

function step(command: string[], log: NodeJS.WritableStream, timeoutMs: number): Promise<void> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${file}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command.join(' ')} failed (${signal ?? `exit ${code}`}); see the build log`));
    });
  });
}
