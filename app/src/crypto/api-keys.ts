import { hash, randomBytes } from 'node:crypto';

/** Prefix of every proxy API key: recognisable by secret scanners and by people, and SDK-friendly (`sk-`). */
export const API_KEY_PREFIX = 'sk-gp-';

const KEY_BODY = /^[A-Za-z0-9_-]{43}$/;

export interface IssuedKey {
  /** The full key: shown to its owner once, never stored. */
  key: string;
  /** SHA-256 of the full key: the only form that is stored. */
  hash: Buffer;
  /** A short, non-secret prefix to recognise the key in lists. */
  displayPrefix: string;
}

/** Makes a new key from 256 bits of the CSPRNG. */
export function issueApiKey(): IssuedKey {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key), displayPrefix: displayPrefix(key) };
}

export function hashApiKey(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/** The same SHA-256 as hex text: what every request computes, and about 4 times cheaper than a Buffer. */
export function apiKeyDigest(key: string): string {
  return hash('sha256', key, 'hex');
}

/** `sk-gp-AbCd1234…`: the prefix and 8 characters, about 48 bits: enough to tell keys apart, useless to guess the rest. */
export function displayPrefix(key: string): string {
  return `${key.slice(0, API_KEY_PREFIX.length + 8)}…`;
}

/** True when the text has the shape of a key this proxy issues (a cheap filter before any lookup). */
export function looksLikeApiKey(text: string): boolean {
  return text.startsWith(API_KEY_PREFIX) && KEY_BODY.test(text.slice(API_KEY_PREFIX.length));
}
