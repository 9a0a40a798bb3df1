/**
 * A key's Redis keys. All start with `rate_limit:` and share the hash tag `{keyId}`, so one script
 * may touch them together on a cluster.
 */
export const keysOf = (keyId: number) => [`rate_limit:{${keyId}}:requests`, `rate_limit:{${keyId}}:tokens`];

/** Marks a settlement as applied, so that sending it again does nothing (see settle.lua). */
export const settledKeyOf = (keyId: number, settlementId: string) =>
  `rate_limit:{${keyId}}:settled:${settlementId}`;
