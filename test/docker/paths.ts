/**
 * Where the test bed keeps its state: ${GPT_PROXY_CACHE:-~/.cache/gpt-proxy}/docker holds the
 * engine's data root (the image cache, kept across runs), its pidfile and log, the lock, build
 * logs and build scratch space. The exec root (runtime state, containerd's sockets) is under /run,
 * short and per state directory. And the address pool the test networks' subnets come from.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where networks get their subnets (`--default-address-pool`; containers.ts picks from it too). */
export const TEST_ADDRESS_POOL = { base: '10.213.0.0/16', size: 24 } as const;

export interface DaemonPaths {
  stateDir: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  pidFile: string;
  logFile: string;
  lockFile: string;
}

/** The state directory: ${GPT_PROXY_CACHE:-~/.cache/gpt-proxy}/docker. */
export function daemonPaths(): DaemonPaths {
  const stateDir = join(process.env.GPT_PROXY_CACHE || join(homedir(), '.cache', 'gpt-proxy'), 'docker');
  // containerd's sockets live under the exec root: keep it short (sun_path holds 108 bytes).
  const id = createHash('sha256').update(stateDir).digest('hex').slice(0, 8);
  const execRoot = join(existsSync('/run') ? '/run' : '/tmp', `gpt-proxy-docker-${id}`);
  return {
    stateDir,
    dataRoot: join(stateDir, 'data'),
    execRoot,
    socket: join(execRoot, 'docker.sock'),
    pidFile: join(stateDir, 'dockerd.pid'),
    logFile: join(stateDir, 'dockerd.log'),
    lockFile: join(stateDir, 'lock'),
  };
}
