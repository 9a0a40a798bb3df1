/**
 * The test bed's images and their cache keys. Each image is tagged
 * `gpt-proxy-test/NAME:VERSION-HASH`, HASH being the content hash of everything its build reads:
 * the build context as Docker sends it, the Dockerfile, the build arguments (which name the
 * parent images' tags, so a new base rebuilds everything on it) and pinned data. Computing the
 * tags needs no engine and no network; an image is built only when its tag is missing.
 *
 * The stand-ins keep the majors of the Pulumi program's pinned images (infra/config.ts):
 * postgres:15-bookworm, redis:7.2-bookworm (Debian: 7.0), nginx:1.28-bookworm (Debian: 1.22),
 * node:24-bookworm-slim.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEBIAN } from './base-image.ts';
import { contextFiles, hashContext, hashFile } from './context-hash.ts';
import { HOST_CA_BUNDLE, NODE_DIST, prepareNodeRootfs } from './node-dist.ts';

export const IMAGE_NAMES = [
  'debian',
  'postgres',
  'redis',
  'nginx',
  'pebble',
  'node',
  'fakeUpstream',
  'app',
] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];
export type ImageTags = Record<ImageName, string>;

/** Bump to rebuild every image (e.g. after changing how images are built, not what). */
const SCHEMA = 1;

export const IMAGES_DIR = fileURLToPath(new URL('./images/', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEBIAN_PREPARE_SCRIPT = `${IMAGES_DIR}debian/prepare-rootfs.sh`;

export interface Recipe {
  name: ImageName;
  repository: string;
  /** The tag's readable part: the version of what the image carries. */
  version: string;
  parents: ImageName[];
  /** Build arguments, given the parents' tags. */
  args(tags: Partial<ImageTags>): Record<string, string>;
  contextDir: string;
  dockerfile: string;
  pinned?: unknown;
  /** Adds generated files to a copy of the context before the build. */
  prepare?: (contextDir: string) => Promise<void>;
}

const base = (tags: Partial<ImageTags>) => ({ BASE: required(tags, 'debian') });
const nodeBase = (tags: Partial<ImageTags>) => ({ NODE_BASE: required(tags, 'node') });
const standIn = (name: ImageName, version: string): Recipe => ({
  name,
  repository: `gpt-proxy-test/${name}`,
  version,
  parents: ['debian'],
  args: base,
  contextDir: `${IMAGES_DIR}${name}`,
  dockerfile: `${IMAGES_DIR}${name}/Dockerfile`,
});

/** Every image but the imported Debian base (base-image.ts builds that one). */
export const RECIPES: Record<Exclude<ImageName, 'debian'>, Recipe> = {
  postgres: standIn('postgres', '15'),
  redis: standIn('redis', '7'),
  nginx: standIn('nginx', '1.22'),
  pebble: standIn('pebble', '2'),
  node: {
    ...standIn('node', NODE_DIST.nodeVersion),
    args: (tags) => ({ ...base(tags), NODE_VERSION: NODE_DIST.nodeVersion }),
    pinned: { ...NODE_DIST, npmCa: existsSync(HOST_CA_BUNDLE) ? hashFile(HOST_CA_BUNDLE) : null },
    prepare: prepareNodeRootfs,
  },
  fakeUpstream: {
    name: 'fakeUpstream',
    repository: 'gpt-proxy-test/fake-upstream',
    version: 'node24',
    parents: ['node'],
    args: nodeBase,
    contextDir: `${REPO_ROOT}test/fake-upstream`,
    dockerfile: `${IMAGES_DIR}fake-upstream/Dockerfile`,
  },
  // The real image: the repository's Dockerfile and build context, on the node base stand-in.
  app: {
    name: 'app',
    repository: 'gpt-proxy-test/app',
    version: 'node24',
    parents: ['node'],
    args: nodeBase,
    contextDir: REPO_ROOT.replace(/\/$/, ''),
    dockerfile: `${REPO_ROOT}Dockerfile`,
  },
};

function required(tags: Partial<ImageTags>, name: ImageName): string {
  const tag = tags[name];
  if (tag === undefined) throw new Error(`the tag of ${name} is needed first`);
  return tag;
}

/** The tag of every image, from content hashes alone. */
export function imageTags(): ImageTags {
  const debianKey = { schema: SCHEMA, debian: DEBIAN, prepare: hashFile(DEBIAN_PREPARE_SCRIPT) };
  const tags: Partial<ImageTags> = {
    debian: `gpt-proxy-test/debian:${DEBIAN.suite}-${short(hashContext('', [], debianKey))}`,
  };
  for (const name of IMAGE_NAMES) {
    if (name === 'debian') continue;
    const recipe = RECIPES[name];
    tags[name] = `${recipe.repository}:${recipe.version}-${short(recipeHash(recipe, tags))}`;
  }
  return tags as ImageTags;
}

function recipeHash(recipe: Recipe, tags: Partial<ImageTags>): string {
  const ignoreFile = `${recipe.contextDir}/.dockerignore`;
  return hashContext(recipe.contextDir, contextFiles(recipe.contextDir), {
    schema: SCHEMA,
    name: recipe.name,
    dockerfile: hashFile(recipe.dockerfile),
    dockerignore: existsSync(ignoreFile) ? hashFile(ignoreFile) : null,
    args: recipe.args(tags),
    pinned: recipe.pinned ?? null,
  });
}

function short(hash: string): string {
  return hash.slice(0, 16);
}
