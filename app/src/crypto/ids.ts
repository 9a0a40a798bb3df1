import { randomFillSync } from 'node:crypto';

const IDS_PER_REFILL = 256;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * A random version-4 UUID as 32 hex digits without dashes — the form of nginx's `$request_id`,
 * and one Postgres accepts for a `uuid` column. From the CSPRNG, 256 ids per refill.
 *
 * Why not `crypto.randomUUID()`: it returns a rope of about 20 joined pieces, ~490 bytes of heap,
 * against 56 for this flat string. A usage row keeps two ids for up to a second before it is
 * written, so they outlive the young generation, and marking those ropes made the proxy's old
 * generation fill, and pause for a full collection, every couple of seconds under load.
 */
export function newId(): string {
  if (offset === pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(16 * IDS_PER_REFILL));
    offset = 0;
  }
  pool[offset + 6] = ((pool[offset + 6] as number) & 0x0f) | 0x40; // version 4
  pool[offset + 8] = ((pool[offset + 8] as number) & 0x3f) | 0x80; // RFC 4122 variant
  const id = pool.toString('hex', offset, offset + 16);
  offset += 16;
  return id;
}
