/**
 * Makes sure the test bed's images exist in the engine: each wanted image (and its parents) is
 * built only when its content-addressed tag (recipes.ts) is missing from the persistent data
 * root, so a warm run builds nothing. Builds use the host network (apt and npm reach Debian's
 * mirror and the npm registry that way; containers never do), log to STATE/logs/NAME.log, and run
 * a few at a time. Images of earlier recipes are removed afterwards, so the cache does not grow.
 */
import { cpSync, createWriteStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildDebianBase } from './base-image.ts';
import type { DockerCli } from './cli.ts';
import {
  DEBIAN_PREPARE_SCRIPT,
  IMAGE_NAMES,
  type ImageName,
  type ImageTags,
  imageTags,
  RECIPES,
} from './recipes.ts';

export interface EnsureResult {
  tags: ImageTags;
  /** Images built by this call, with the seconds each took. */
  built: Array<{ name: ImageName; seconds: number }>;
}

const LABEL = 'gpt-proxy-test.image';
const BUILDS_AT_ONCE = 3;
const BUILD_TIMEOUT_MS = 20 * 60_000;

export async function ensureImages(
  cli: DockerCli,
  stateDir: string,
  wanted: readonly ImageName[] = IMAGE_NAMES,
): Promise<EnsureResult> {
  const tags = imageTags();
  const built: EnsureResult['built'] = [];
  const slots = semaphore(BUILDS_AT_ONCE);
  const pending = new Map<ImageName, Promise<void>>();
  const ensure = (name: ImageName): Promise<void> => {
    let promise = pending.get(name);
    if (!promise) {
      promise = (async () => {
        await Promise.all((name === 'debian' ? [] : RECIPES[name].parents).map(ensure));
        if (await exists(cli, tags[name])) return;
        await slots(async () => {
          const started = Date.now();
          await build(cli, stateDir, name, tags);
          built.push({ name, seconds: Math.round((Date.now() - started) / 1000) });
        });
      })();
      pending.set(name, promise);
    }
    return promise;
  };
  await Promise.all(wanted.map(ensure));
  if (built.length > 0) await removeStaleImages(cli, tags);
  return { tags, built };
}

async function exists(cli: DockerCli, tag: string): Promise<boolean> {
  const result = await cli.run(['image', 'inspect', '--format', '{{.Id}}', tag], { allowFailure: true });
  return result.code === 0;
}

async function build(cli: DockerCli, stateDir: string, name: ImageName, tags: ImageTags): Promise<void> {
  const logDir = join(stateDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const workDir = join(stateDir, 'build', name);
  const labels = { [LABEL]: name };
  try {
    if (name === 'debian') {
      await buildDebianBase(cli, tags.debian, labels, DEBIAN_PREPARE_SCRIPT, workDir, logFile);
      return;
    }
    const recipe = RECIPES[name];
    let context = recipe.contextDir;
    if (recipe.prepare) {
      rmSync(workDir, { recursive: true, force: true });
      cpSync(recipe.contextDir, workDir, { recursive: true });
      await recipe.prepare(workDir);
      context = workDir;
    }
    const args = Object.entries(recipe.args(tags)).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
    const log = createWriteStream(logFile);
    try {
      await cli.run(
        ['build', '--network', 'host', '--force-rm', '--label', `${LABEL}=${name}`, ...args].concat([
          '--tag',
          tags[name],
          '--file',
          recipe.dockerfile,
          context,
        ]),
        { timeoutMs: BUILD_TIMEOUT_MS, onOutput: (chunk) => log.write(chunk) },
      );
    } finally {
      await new Promise((resolve) => log.end(resolve));
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(
      `building the ${name} image failed: ${reason}\n--- ${logFile} (end) ---\n${tail(logFile)}`,
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Removes test bed images whose tag is no longer current, and dangling layers older than three
 * days: younger ones stay as the classic builder's cache (the app image's build stage with its
 * `npm ci` is dangling after every build, and reused by the next one while package*.json hold).
 */
async function removeStaleImages(cli: DockerCli, tags: ImageTags): Promise<void> {
  const current = new Set<string>(Object.values(tags));
  const listed = await cli.text([
    'image',
    'ls',
    '--filter',
    `label=${LABEL}`,
    '--format',
    '{{.Repository}}:{{.Tag}}',
  ]);
  const stale = listed
    .split('\n')
    .filter((ref) => ref !== '' && !ref.includes('<none>') && !current.has(ref));
  if (stale.length > 0) await cli.run(['image', 'rm', ...stale], { allowFailure: true, timeoutMs: 120_000 });
  await cli.run(['image', 'prune', '--force', '--filter', 'until=72h'], {
    allowFailure: true,
    timeoutMs: 120_000,
  });
}

function semaphore(size: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: Array<() => void> = [];
  return async (task) => {
    // A finished task hands its slot straight to the next waiter, so at most `size` ever run.
    if (running >= size) await new Promise<void>((resolve) => queue.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = queue.shift();
      if (next) next();
      else running--;
    }
  };
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
