import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Files of the repository the program reads: the nginx configuration it uploads into the nginx
// container, and the migrations whose digest re-runs init-db.

/** Every file below `dir`, as sorted paths relative to it (with `/`). */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) =>
      join(entry.parentPath, entry.name)
        .slice(dir.length)
        .replace(/^[/\\]+/, ''),
    )
    .map((path) => path.split('\\').join('/'))
    .sort();
}

/** SHA-256 over the names and contents of every file below `dir`: changes when any of them does. */
export function digestFiles(dir: string): string {
  const hash = createHash('sha256');
  for (const path of listFiles(dir)) {
    hash.update(`${path}\0`);
    hash.update(readFileSync(join(dir, path)));
    hash.update('\0');
  }
  return hash.digest('hex');
}
