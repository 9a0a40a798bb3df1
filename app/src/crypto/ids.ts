import { randomFillSync } from 'node:crypto';

const IDS_PER_REFILL = 256;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * A version-7 UUID (RFC 9562) as 32 hex digits without dashes — the form of nginx's
 * `$request_id`, and one Postgres accepts for a `uuid` column: the Unix time in milliseconds in
 * the first 48 bits, then 74 bits from the CSPRNG (256 ids per refill).
 *
 * Why time first: usage rows are keyed by this id, and so are the request ids the proxy makes.
 * Random keys land all over their B-tree index, so every insert touches a page of its own, and
 * the work per row grows with the table (and, with full-page writes, so does the WAL); ids that
 * grow with time are appended at the index's right edge. Postgres spent 15–38% less CPU per usage
 * row with them (`node bench/pg-rows.ts`, bench/RESULTS.md), CPU it takes from the same host.
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
  pool.writeUIntBE(Date.now(), offset, 6);
  pool[offset + 6] = ((pool[offset + 6] as number) & 0x0f) | 0x70; // version 7
  pool[offset + 8] = ((pool[offset + 8] as number) & 0x3f) | 0x80; // RFC 9562 variant
  const id = pool.toString('hex', offset, offset + 16);
  offset += 16;
  return id;
}
