/**
 * rm -rf for directories that may have mounts inside: dockerd leaves its bind mount of the host's
 * network namespace in the exec root (EXEC_ROOT/netns/default), and an interrupted debootstrap
 * leaves proc and sys mounted in its tree. Those are unmounted (lazily, deepest first) before the
 * tree is removed, so nothing outside it is touched and nothing stays mounted.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

export function removeTree(dir: string): void {
  const inside = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort()
    .reverse();
  for (const point of inside) execFileSync('umount', ['--lazy', point], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
