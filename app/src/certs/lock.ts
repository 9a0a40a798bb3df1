import { randomBytes } from 'node:crypto';
import { link, open, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { heldHere, LockHandle, type LockOwner, readOwner } from './lock-handle.ts';

export { LockHandle, type LockOwner } from './lock-handle.ts';

export interface LockOptions {
  /** A lock whose file was not touched for this long belongs to a holder that died. */
  staleMs?: number;
  /** How often the holder touches the file to show it is alive. */
  heartbeatMs?: number;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type TryLockResult = { acquired: LockHandle } | { heldBy: LockOwner | undefined };

/**
 * A lock file in CERT_DIR that works across processes and containers sharing the volume:
 * created with O_EXCL, holding pid, host name and a random token, and touched every few
 * seconds while held. A lock nobody touched for `staleMs` (or whose holder is a dead process
 * on this same host) is broken by renaming it away, which only one contender can do.
 */
export class DirLock {
  readonly path: string;
  readonly #staleMs: number;
  readonly #heartbeatMs: number;

  constructor(path: string, { staleMs = 30_000, heartbeatMs = 5_000 }: LockOptions = {}) {
    this.path = path;
    this.#staleMs = staleMs;
    this.#heartbeatMs = heartbeatMs;
  }

  async tryAcquire(purpose: string): Promise<TryLockResult> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const owner: LockOwner = {
        pid: process.pid,
        hostname: hostname(),
        token: randomBytes(12).toString('hex'),
        purpose,
        since: new Date().toISOString(),
      };
      try {
        const file = await open(this.path, 'wx', 0o644);
        try {
          await file.writeFile(`${JSON.stringify(owner)}\n`);
        } finally {
          await file.close();
        }
        heldHere.add(owner.token);
        return { acquired: new LockHandle(this.path, owner, this.#heartbeatMs) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readOwner(this.path);
      if (!(await this.#isStale(holder))) return { heldBy: holder };
      await this.#breakStale(holder);
    }
    return { heldBy: await readOwner(this.path) };
  }

  async #isStale(holder: LockOwner | undefined): Promise<boolean> {
    if (holder && heldHere.has(holder.token)) return false;
    if (holder && holder.hostname === hostname() && (holder.pid === process.pid || !pidAlive(holder.pid))) {
      return true;
    }
    try {
      return Date.now() - (await stat(this.path)).mtimeMs > this.#staleMs;
    } catch {
      return false; // released meanwhile: the next attempt will create it
    }
  }

  async #breakStale(seen: LockOwner | undefined): Promise<void> {
    const aside = `${this.path}.stale-${randomBytes(6).toString('hex')}`;
    try {
      await rename(this.path, aside);
    } catch {
      return; // someone else broke or released it first
    }
    const moved = await readOwner(aside);
    if (moved?.token !== seen?.token) {
      // Between our look and our rename, another contender broke the stale lock and took a
      // fresh one: put theirs back (link fails if a third one already exists).
      await link(aside, this.path).catch(() => {});
    }
    await unlink(aside).catch(() => {});
  }

  /** Tries until `deadline`, polling; calls `onWait` once with the holder when it has to wait. */
  async acquire(
    purpose: string,
    {
      deadline,
      pollMs = 500,
      onWait,
    }: { deadline: number; pollMs?: number; onWait?: (h?: LockOwner) => void },
  ): Promise<LockHandle | undefined> {
    let told = false;
    for (;;) {
      const result = await this.tryAcquire(purpose);
      if ('acquired' in result) return result.acquired;
      if (!told) onWait?.(result.heldBy);
      told = true;
      if (Date.now() + pollMs > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}
