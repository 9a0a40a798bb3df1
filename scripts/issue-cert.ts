// issue-cert: exits 0 once a CA-issued certificate for DOMAIN is in place (with
// ACME_DIRECTORY=self-signed, the placeholder), ordering one itself if needed and waiting for an
// order already under way; exits 1 with the reason otherwise.
// Usage: npm run issue-cert [-- --timeout SECONDS]
import { parseArgs } from 'node:util';
import { issueCertificate } from '../app/src/certs/issue.ts';
import { setupCerts } from '../app/src/certs/setup.ts';
import { createLogger } from '../app/src/log/logger.ts';
import { print, runCli, secondsOption } from './cli.ts';

runCli('issue-cert', 'issue-cert [--timeout SECONDS]', async (ctx) => {
  const { values } = parseArgs({ options: { timeout: { type: 'string', default: '300' } } });
  const timeoutMs = secondsOption(values.timeout, '--timeout') * 1000;
  const config = ctx.load(['acme', 'log']);
  // Progress goes to stderr; stdout carries only the one-line result.
  const logger = createLogger(config.log, 'issue-cert', process.stderr);
  const { manager, lock } = await setupCerts(config.acme, logger);
  const result = await issueCertificate(manager, lock, logger, timeoutMs);
  if (!result.ok) {
    process.stderr.write(`issue-cert: ${result.message}\n`);
    return 1;
  }
  const { serial, notAfter, selfSigned } = result.info;
  const kind = selfSigned ? 'self-signed placeholder' : 'CA-issued';
  await print(
    `certificate for ${config.acme.domain} in place (${kind}): serial ${serial}, valid until ${notAfter.toISOString()}`,
  );
  return 0;
});
