// create-admin: creates an admin user and prints its API key once.
// Usage: npm run create-admin -- --username NAME --email EMAIL [--json] [--rotate-key] [--wait SECONDS]
import { parseArgs } from 'node:util';
import { createAdmin } from '../app/src/auth/bootstrap-admin.ts';
import { createPool } from '../app/src/db/pool.ts';
import { connectWithRetry, print, runCli, UsageError, waitOption } from './cli.ts';

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const USAGE = 'create-admin --username NAME --email EMAIL [--json] [--rotate-key] [--wait SECONDS]';

runCli('create-admin', USAGE, async (ctx) => {
  const { values } = parseArgs({
    options: {
      username: { type: 'string' },
      email: { type: 'string' },
      json: { type: 'boolean', default: false },
      'rotate-key': { type: 'boolean', default: false },
      wait: { type: 'string', default: '60' },
    },
  });
  const { username, email } = values;
  if (!username || !USERNAME.test(username)) {
    throw new UsageError('--username is required: 1-64 letters, digits, dots, dashes or underscores');
  }
  if (!email || !EMAIL.test(email)) throw new UsageError('--email is required and must be an e-mail address');
  const wait = waitOption(values.wait);

  const { database } = ctx.load(['database']);
  const pool = createPool(database, { applicationName: 'gpt-proxy create-admin' });
  try {
    (await connectWithRetry(pool, wait)).release();
    const result = await createAdmin(pool, { username, email, rotateKey: values['rotate-key'] === true });
    const json = values.json === true;
    switch (result.outcome) {
      case 'created':
        await print(
          json
            ? JSON.stringify({ username, email, created: true, apiKey: result.apiKey })
            : `created admin user ${username} <${email}>; this API key is shown only once:\n${result.apiKey}`,
        );
        return 0;
      case 'rotated': {
        const enabled = result.reenabled ? '; the user was disabled and is re-enabled' : '';
        const promoted = result.promoted ? '; the user was not an admin and is one now' : '';
        process.stderr.write(
          `create-admin: ${username} exists; issued a new key, revoked ${result.revokedKeys}${enabled}${promoted}\n`,
        );
        await print(
          json
            ? JSON.stringify({ username, email, created: false, apiKey: result.apiKey })
            : `new API key for ${username}; shown only once:\n${result.apiKey}`,
        );
        return 0;
      }
      case 'exists': {
        const what = result.isAdmin
          ? 'no key issued (--rotate-key issues a new one)'
          : 'it is not an admin; no key issued (--rotate-key makes it an admin with a new key)';
        process.stderr.write(`create-admin: user ${username} already exists; ${what}\n`);
        if (json) await print(JSON.stringify({ username, email, created: false }));
        return 0;
      }
    }
  } finally {
    await pool.end();
  }
});
