/**
 * The Docker test bed for test files: its own engine (daemon.ts), the images (images.ts), and
 * helpers for networks and containers (containers.ts).
 *
 *   const bed = await openTestBed();               // top level: engine up, or a reason to skip
 *   describe('…', { skip: bed.skip }, () => {
 *     before(async () => { tags = await bed.images(['postgres']); });
 *     after(() => bed.stop());
 *     test('…', async () => { await bed.network('t-net'); await bed.run({ … }); });
 *   });
 *
 * The engine needs root and Debian's docker.io (and flock, tar, debootstrap for the base image);
 * without them, or when dockerd does not come up, `skip` says why. GPT_PROXY_REQUIRE_DOCKER=1
 * turns that skip into a failure, for machines where the test bed must run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { DockerCli } from './cli.ts';
import { type Container, createNetwork, type RunSpec, runContainer, type TestNetwork } from './containers.ts';
import { type Dockerd, DockerdUnavailable, startDockerd } from './daemon.ts';
import { ensureImages } from './images.ts';
import type { ImageName, ImageTags } from './recipes.ts';

export interface TestBed {
  /** Why the tests cannot run here (for `{ skip }`), or false. */
  readonly skip: string | false;
  readonly cli: DockerCli;
  readonly daemon: Dockerd;
  /** Ensures the images (building what is missing) and returns every image's tag. */
  images(wanted?: readonly ImageName[]): Promise<ImageTags>;
  /** Images built by this process so far, with seconds taken. */
  readonly built: ReadonlyArray<{ name: ImageName; seconds: number }>;
  network(name: string, options?: { internal?: boolean }): Promise<TestNetwork>;
  run(spec: RunSpec): Promise<Container>;
  /** Removes containers, networks and volumes and stops the engine (idempotent). */
  stop(): Promise<void>;
}

const TOOLS = ['dockerd', 'docker', 'flock', 'tar', 'debootstrap', 'npm'] as const;

/** Why this machine cannot run the test bed, or undefined. */
export function missingPrerequisite(): string | undefined {
  if (process.platform !== 'linux') return `the Docker test bed runs on Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the Docker test bed starts its own dockerd and so must run as root';
  for (const tool of TOOLS) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `the Docker test bed needs \`${tool}\` (Debian: apt-get install docker.io debootstrap util-linux)`;
    }
  }
  return undefined;
}

/**
 * Traffic between containers on one bridge passes the host's iptables FORWARD chain when
 * br_netfilter is loaded; a system dockerd that ran once leaves that chain's policy at DROP. The
 * test bed sets no rules of its own, so say so plainly instead of letting every test time out.
 */
function hostFirewallProblem(): string | undefined {
  try {
    if (readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() !== '1') return undefined;
    const forward = execFileSync('iptables', ['-S', 'FORWARD'], { encoding: 'utf8', stdio: 'pipe' });
    if (!/^-P FORWARD DROP/m.test(forward)) return undefined;
  } catch {
    return undefined;
  }
  return 'the host drops bridged traffic (iptables FORWARD policy DROP with bridge-nf-call-iptables=1, as a system dockerd leaves it): containers of the test bed could not reach each other';
}

/** Starts the engine, or returns a test bed whose `skip` says why it cannot run here. */
export async function openTestBed(): Promise<TestBed> {
  let reason = missingPrerequisite();
  const firewall = reason ? undefined : hostFirewallProblem();
  if (firewall) throw new Error(firewall);
  let daemon: Dockerd | undefined;
  if (!reason) {
    try {
      daemon = await startDockerd();
    } catch (err) {
      if (!(err instanceof DockerdUnavailable)) throw err;
      reason = err.message;
    }
  }
  if (!daemon) {
    const message = `skipped: ${reason ?? 'dockerd unavailable'}`;
    if (process.env.GPT_PROXY_REQUIRE_DOCKER === '1')
      throw new Error(`GPT_PROXY_REQUIRE_DOCKER=1 but ${message}`);
    return skipped(message);
  }
  return ready(daemon);
}

function ready(daemon: Dockerd): TestBed {
  const built: Array<{ name: ImageName; seconds: number }> = [];
  return {
    skip: false,
    cli: daemon.cli,
    daemon,
    built,
    images: async (wanted) => {
      const result = await ensureImages(daemon.cli, daemon.paths.stateDir, wanted);
      built.push(...result.built);
      return result.tags;
    },
    network: (name, options) => createNetwork(daemon.cli, name, options),
    run: (spec) => runContainer(daemon.cli, spec),
    stop: () => daemon.stop(),
  };
}

function skipped(message: string): TestBed {
  const unavailable = (): never => {
    throw new Error(`the Docker test bed is not running (${message})`);
  };
  return {
    skip: message,
    get cli(): DockerCli {
      return unavailable();
    },
    get daemon(): Dockerd {
      return unavailable();
    },
    built: [],
    images: async () => unavailable(),
    network: async () => unavailable(),
    run: async () => unavailable(),
    stop: async () => {},
  };
}
