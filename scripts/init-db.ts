// init-db: applies pending migrations. Idempotent; two at once are safe (advisory lock).
// Usage: npm run init-db [-- --wait SECONDS]
import { parseArgs } from 'node:util';
import { migrate, readMigrations } from '../app/src/db/migrate.ts';
import { createPool } from '../app/src/db/pool.ts';
import { connectWithRetry, print, runCli, waitOption } from './cli.ts';

runCli('init-db', 'init-db [--wait SECONDS]', async (ctx) => {
  const { values } = parseArgs({ options: { wait: { type: 'string', default: '60' } } });
  const wait = waitOption(values.wait);
  const { database } = ctx.load(['database']);
  const migrations = await readMigrations();
  // No bound on a query: a migration may rewrite a big table, and a second init-db waits for the
  // first's lock for as long as that takes.
  const pool = createPool(database, { applicationName: 'gpt-proxy init-db', queryTimeoutMs: 0 });
  try {
    const client = await connectWithRetry(pool, wait);
    try {
      const result = await migrate(client, migrations);
      for (const name of result.applied) await print(`applied ${name}`);
      await print(`migrations: applied=${result.applied.length} total=${migrations.length}`);
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
  return 0;
});
