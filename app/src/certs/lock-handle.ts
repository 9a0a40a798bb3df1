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

/** A held lock. `lost` turns true if another process broke it (we stalled past `staleMs`). */
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
    if (!(await this.#stillOurs())) {
      this.lost = true;
      clearInterval(this.#timer);
      return;
    }
    const now = new Date();
    await utimes(this.#path, now, now).catch(() => {});
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
