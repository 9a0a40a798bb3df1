import type pg from 'pg';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { AzureDeployment } from './deployments.ts';
import type { Provider, UpstreamKey } from './types.ts';

export type KeyStatus = 'active' | 'cooling' | 'disabled' | 'retired';

/** One row of upstream_keys as the pool sees it, with the secret opened in memory. */
export interface KeyState {
  key: UpstreamKey;
  status: KeyStatus;
  failureCount: number;
  cooldownUntil: Date | null;
}

interface Row {
  id: number;
  provider: Provider;
  key_ciphertext: Buffer;
  key_iv: Buffer;
  key_auth_tag: Buffer;
  encryption_key_id: string;
  endpoint: string | null;
  deployments: AzureDeployment[] | null;
  status: KeyStatus;
  failure_count: number;
  cooldown_until: Date | null;
}

/**
 * Reads the upstream keys (all but retired) from Postgres, where their state is shared by every
 * instance. Secrets are opened once per row version and kept only in memory; a row that cannot
 * be opened is skipped and reported, so one bad row does not take the pool down.
 */
export class UpstreamKeyStore {
  readonly #pool: pg.Pool;
  readonly #box: SecretBox;
  readonly #opened = new Map<string, string>();
  readonly #onUnreadable: (id: number, err: unknown) => void;

  constructor(options: { pool: pg.Pool; box: SecretBox; onUnreadable?: (id: number, err: unknown) => void }) {
    this.#pool = options.pool;
    this.#box = options.box;
    this.#onUnreadable = options.onUnreadable ?? (() => {});
  }

  /** How many opened secrets are held in memory (one per row read last; tests check it). */
  get openedCount(): number {
    return this.#opened.size;
  }

  async load(): Promise<KeyState[]> {
    const { rows } = await this.#pool.query<Row>(
      `SELECT id, provider, key_ciphertext, key_iv, key_auth_tag, encryption_key_id, endpoint, deployments,
              status, failure_count, cooldown_until
       FROM upstream_keys WHERE status <> 'retired' ORDER BY id`,
    );
    const states: KeyState[] = [];
    const read = new Set<string>();
    for (const row of rows) {
      const version = `${row.id}:${row.encryption_key_id}:${row.key_iv.toString('hex')}`;
      read.add(version);
      const secret = this.#open(version, row);
      if (secret === undefined) continue;
      states.push({
        key: {
          id: row.id,
          provider: row.provider,
          secret,
          endpoint: row.endpoint,
          deployments: row.deployments,
        },
        status: row.status,
        failureCount: row.failure_count,
        cooldownUntil: row.cooldown_until,
      });
    }
    // A key deleted (or retired, or sealed again) must not stay in memory as plaintext until restart.
    for (const version of this.#opened.keys()) if (!read.has(version)) this.#opened.delete(version);
    return states;
  }

  #open(version: string, row: Row): string | undefined {
    const known = this.#opened.get(version);
    if (known !== undefined) return known;
    try {
      const secret = this.#box.open({
        ciphertext: row.key_ciphertext,
        iv: row.key_iv,
        authTag: row.key_auth_tag,
        keyId: row.encryption_key_id,
      });
      this.#opened.set(version, secret);
      return secret;
    } catch (err) {
      this.#onUnreadable(row.id, err);
      return undefined;
    }
  }
}
