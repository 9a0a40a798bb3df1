import { readFileSync, unlinkSync } from 'node:fs';
import { readFile, unlink, utimes } from 'node:fs/promises';

/** Who holds the lock, as written in the lock file. */
export interface LockOwner {
  pid: number;
  hostname: string;
  token: string;
  purpose: string;
  since: string;
}

// Tokens this process holds, so a lock of ours is never mistaken for one left by an earlier
// process that had our PID (a restarted container usually gets the same PID again).
export const heldHere = new Set<string>();

/** A held lock. `lost` turns true once another process holds it (it broke ours: we stalled). */
export class LockHandle {
  readonly owner: LockOwner;
  lost = false;
  readonly #path: string;
  readonly #timer: NodeJS.Timeout;

  constructor(path: string, owner: LockOwner, heartbeatMs: number) {
    this.#path = path;
    this.owner = owner;
    this.#timer = setInterval(() => void this.#beat(), heartbeatMs).unref();
  }

  async #beat(): Promise<void> {
    if (!(await this.stillHeld())) return;
    const now = new Date();
    await utimes(this.#path, now, now).catch(() => {});
  }

  /**
   * Looks at the lock file now. Only another owner's token there means the lock was taken from
   * us: a file that is missing or unreadable for a moment (a contender breaking a stale lock
   * renames it aside, and puts it back if it turns out to be live) is looked at again on the
   * next beat, or the heartbeat would stop and the lock really go stale under us.
   */
  async stillHeld(): Promise<boolean> {
    if (this.lost) return false;
    const current = await readOwner(this.#path);
    if (current !== undefined && current.token !== this.owner.token) {
      this.lost = true;
      clearInterval(this.#timer);
    }
    return !this.lost;
  }

  async #stillOurs(): Promise<boolean> {
    const current = await readOwner(this.#path);
    return current?.token === this.owner.token;
  }

  async release(): Promise<void> {
    clearInterval(this.#timer);
    heldHere.delete(this.owner.token);
    if (await this.#stillOurs()) await unlink(this.#path).catch(() => {});
  }

  /** For exit paths (a signal handler) where no await is possible. */
  releaseSync(): void {
    clearInterval(this.#timer);
    heldHere.delete(this.owner.token);
    try {
      const current = JSON.parse(readFileSync(this.#path, 'utf8')) as LockOwner;
      if (current.token === this.owner.token) unlinkSync(this.#path);
    } catch {
      // gone, or not ours any more
    }
  }
}

export async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    return typeof owner.token === 'string' ? (owner as LockOwner) : undefined;
  } catch {
    return undefined; // missing, or a holder that crashed between creating and writing it
  }
}
