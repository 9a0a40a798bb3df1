import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/** An encrypted upstream key as it is stored: AES-256-GCM ciphertext, its IV and tag, and which key sealed it. */
export interface SealedSecret {
  ciphertext: Buffer;
  iv: Buffer;
  authTag: Buffer;
  keyId: string;
}

/** Raised when a sealed secret cannot be opened; the message says why and never includes key material. */
export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionError';
  }
}

// Binds ciphertexts to their purpose so a blob cannot be replayed into another field.
const AAD = Buffer.from('gpt-proxy/upstream-key/v1');

interface KeyMaterial {
  id: string;
  encryptionKey: Buffer;
  fingerprintKey: Buffer;
}

function derive(hex: string): KeyMaterial {
  const master = Buffer.from(hex, 'hex');
  const sub = (info: string, length: number) =>
    Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `gpt-proxy/${info}`, length));
  return {
    // The id names the key without revealing it, so rows record which key sealed them.
    id: sub('key-id/v1', 8).toString('hex'),
    encryptionKey: master,
    fingerprintKey: sub('fingerprint/v1', 32),
  };
}

/**
 * Seals upstream keys with ENCRYPTION_KEY and opens rows sealed by it or by any key in
 * ENCRYPTION_KEY_PREVIOUS (read-only, for rotation). Fingerprints are HMACs under a key derived
 * from the sealing key, so duplicates are found without decrypting and without storing a plain hash.
 */
export class SecretBox {
  readonly #current: KeyMaterial;
  readonly #byId: Map<string, KeyMaterial>;

  constructor(options: { current: string; previous?: readonly string[] }) {
    this.#current = derive(options.current);
    this.#byId = new Map([this.#current, ...(options.previous ?? []).map(derive)].map((k) => [k.id, k]));
  }

  get currentKeyId(): string {
    return this.#current.id;
  }

  /** The ids of every key this box can open with, current first. */
  get keyIds(): string[] {
    return [...this.#byId.keys()];
  }

  seal(plaintext: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#current.encryptionKey, iv);
    cipher.setAAD(AAD);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { ciphertext, iv, authTag: cipher.getAuthTag(), keyId: this.#current.id };
  }

  open(sealed: SealedSecret): string {
    const key = this.#byId.get(sealed.keyId);
    if (!key) {
      throw new DecryptionError(
        `sealed with encryption key id ${sealed.keyId}, which is neither ENCRYPTION_KEY nor listed in ENCRYPTION_KEY_PREVIOUS; ` +
          'set the key that sealed it in ENCRYPTION_KEY_PREVIOUS',
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.encryptionKey, sealed.iv);
      decipher.setAAD(AAD);
      decipher.setAuthTag(sealed.authTag);
      return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new DecryptionError(
        `authentication failed for a secret sealed with key id ${sealed.keyId}: ` +
          'the stored ciphertext was altered or that encryption key is not the one that sealed it',
      );
    }
  }

  /** HMAC fingerprint of a plaintext under the given key id (default: the current key). */
  fingerprint(plaintext: string, keyId: string = this.#current.id): Buffer {
    const key = this.#byId.get(keyId);
    if (!key) throw new DecryptionError(`unknown encryption key id ${keyId}`);
    return createHmac('sha256', key.fingerprintKey).update(plaintext, 'utf8').digest();
  }
}
