// init-upstream-keys: syncs the upstream keys listed in the environment into Postgres, sealed.
// Usage: npm run init-upstream-keys [-- --json] [--wait SECONDS]
import { parseArgs } from 'node:util';
import { SecretBox } from '../app/src/crypto/secret-box.ts';
import { createPool } from '../app/src/db/pool.ts';
import { desiredKeysFromConfig, syncEnvKeys } from '../app/src/upstream/key-sync.ts';
import { connectWithRetry, print, runCli, waitOption } from './cli.ts';

runCli('init-upstream-keys', 'init-upstream-keys [--json] [--wait SECONDS]', async (ctx) => {
  const { values } = parseArgs({
    options: { json: { type: 'boolean', default: false }, wait: { type: 'string', default: '60' } },
  });
  const wait = waitOption(values.wait);
  const config = ctx.load(['database', 'encryption', 'upstream']);
  const desired = desiredKeysFromConfig(config.upstream);
  if (desired.length === 0) {
    const variable = config.upstream.type === 'azure' ? 'AZURE_API_KEYS' : 'OPENAI_API_KEYS';
    process.stderr.write(
      `init-upstream-keys: warning: ${variable} is empty (UPSTREAM_TYPE=${config.upstream.type}); nothing changed\n`,
    );
  }
  const box = new SecretBox(config.encryption);
  const pool = createPool(config.database, { applicationName: 'gpt-proxy init-upstream-keys' });
  try {
    const client = await connectWithRetry(pool, wait);
    try {
      const r = await syncEnvKeys(client, box, desired);
      await print(
        values.json
          ? JSON.stringify(r)
          : `added=${r.added} reactivated=${r.reactivated} retired=${r.retired} unchanged=${r.unchanged}`,
      );
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
  return 0;
});
