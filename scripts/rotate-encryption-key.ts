// rotate-encryption-key: re-seals every upstream key under the current ENCRYPTION_KEY.
// Run with the new key in ENCRYPTION_KEY and the old one(s) in ENCRYPTION_KEY_PREVIOUS.
// Usage: npm run rotate-encryption-key [-- --json] [--wait SECONDS]
import { parseArgs } from 'node:util';
import { SecretBox } from '../app/src/crypto/secret-box.ts';
import { createPool } from '../app/src/db/pool.ts';
import { reencryptUpstreamKeys } from '../app/src/upstream/reencrypt.ts';
import { connectWithRetry, print, runCli, waitOption } from './cli.ts';

runCli('rotate-encryption-key', 'rotate-encryption-key [--json] [--wait SECONDS]', async (ctx) => {
  const { values } = parseArgs({
    options: { json: { type: 'boolean', default: false }, wait: { type: 'string', default: '60' } },
  });
  const wait = waitOption(values.wait);
  const config = ctx.load(['database', 'encryption']);
  const box = new SecretBox(config.encryption);
  const pool = createPool(config.database, { applicationName: 'gpt-proxy rotate-encryption-key' });
  try {
    const client = await connectWithRetry(pool, wait);
    try {
      const r = await reencryptUpstreamKeys(client, box);
      await print(values.json ? JSON.stringify(r) : `reencrypted=${r.reencrypted} unchanged=${r.unchanged}`);
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
  return 0;
});
