/**
 * Empties the test engine of everything but images: all containers (with their anonymous
 * volumes), all user-defined networks, all volumes. The data root belongs to the test bed alone
 * (the keeper's lock), so whatever is there besides the image cache was left by a test: removed
 * when the engine starts (a crashed run) and again before it stops.
 */
import type { DockerCli } from './cli.ts';

export async function sweepEngine(cli: DockerCli): Promise<void> {
  const containers = await ids(cli, ['ps', '--all', '--quiet', '--no-trunc']);
  if (containers.length > 0) {
    await cli.run(['rm', '--force', '--volumes', ...containers], { timeoutMs: 120_000 });
  }
  const networks = await ids(cli, ['network', 'ls', '--quiet', '--filter', 'type=custom']);
  if (networks.length > 0) await cli.run(['network', 'rm', ...networks], { timeoutMs: 60_000 });
  const volumes = await ids(cli, ['volume', 'ls', '--quiet']);
  if (volumes.length > 0) await cli.run(['volume', 'rm', '--force', ...volumes], { timeoutMs: 60_000 });
}

async function ids(cli: DockerCli, args: string[]): Promise<string[]> {
  const out = await cli.text(args, { timeoutMs: 30_000 });
  return out.split('\n').filter((line) => line !== '');
}
