/**
 * Content hashes of Docker build contexts, the image cache's keys. A context is the files Docker
 * would send: everything under the root minus what its .dockerignore excludes, with Docker's
 * rules (patterns in order, the last match decides, `!` re-includes, a pattern also matches a
 * path's parent directories, `*` and `?` stay within one path segment, `**` spans any number).
 * The hash covers each file's path, executable bit and bytes (a symlink: its target).
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';

interface Rule {
  exception: boolean;
  pattern: string;
  regex: RegExp;
}

/** The rules of `root/.dockerignore` (none when there is no such file). */
export function ignoreRules(root: string): Rule[] {
  const file = join(root, '.dockerignore');
  if (!existsSync(file)) return [];
  const rules: Rule[] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exception = line.startsWith('!');
    if (exception) line = line.slice(1).trim();
    const pattern = posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (pattern === '' || pattern === '.') continue;
    rules.push({ exception, pattern, regex: globRegex(pattern) });
  }
  return rules;
}

function globRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i);
    if (c === '*' && pattern.charAt(i + 1) === '*') {
      i++;
      if (pattern.charAt(i + 1) === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern.charAt(++i)}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether Docker leaves `path` (relative, POSIX) out of the context. */
export function isExcluded(path: string, rules: readonly Rule[]): boolean {
  const candidates = [path];
  for (let dir = posix.dirname(path); dir !== '.'; dir = posix.dirname(dir)) candidates.push(dir);
  let excluded = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.regex.test(candidate))) excluded = !rule.exception;
  }
  return excluded;
}

/** Could an exception rule bring back something below the excluded directory `dir`? */
function mayReinclude(dir: string, rules: readonly Rule[]): boolean {
  return rules.some((rule) => {
    if (!rule.exception) return false;
    const literal = rule.pattern.split(/[*?[\\]/)[0] ?? '';
    const wild = literal !== rule.pattern;
    return literal.startsWith(`${dir}/`) || (wild && `${dir}/`.startsWith(literal));
  });
}

/** The context's files, relative POSIX paths in sorted order. */
export function contextFiles(root: string): string[] {
  const rules = ignoreRules(root);
  const files: string[] = [];
  const walk = (relDir: string) => {
    for (const entry of readdirSync(join(root, relDir), { withFileTypes: true })) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      const excluded = isExcluded(rel, rules);
      if (entry.isDirectory()) {
        if (!excluded || mayReinclude(rel, rules)) walk(rel);
      } else if (!excluded) files.push(rel);
    }
  };
  walk('');
  return files.sort();
}

/** sha256 (hex) over `files` of `root`, and over `extra` (build arguments, recipe data). */
export function hashContext(root: string, files: readonly string[], extra: unknown): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(extra));
  for (const rel of files) {
    const full = join(root, rel);
    const stat = lstatSync(full);
    hash.update(`\0${rel}\0${stat.mode & 0o111 ? 'x' : '-'}\0`);
    hash.update(stat.isSymbolicLink() ? `-> ${readlinkSync(full)}` : readFileSync(full));
  }
  return hash.digest('hex');
}

/** The hash of a file's bytes (a Dockerfile outside its context, say). */
export function hashFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
