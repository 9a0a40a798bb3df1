import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createLogger } from '../../app/src/log/logger.ts';

// The runbook's jq filters, run by Debian's jq over lines the proxy's own logger writes: an
// operator who pastes them must see the lines they promise, and only those.

const exec = promisify(execFile);
const runbook = readFileSync(new URL('../../docs/runbook.md', import.meta.url), 'utf8');
const filters = [...runbook.matchAll(/jq -c '([^']+)'/g)].map((m) => m[1] as string);

function loggedLines(): string {
  let out = '';
  const logger = createLogger({ level: 'info', promptBody: false }, 'gpt-proxy', {
    write: (line: string) => {
      out += line;
    },
  });
  logger.info({ reqId: 'r-ok', status: 200 }, 'request');
  logger.info({ reqId: 'r-5xx', status: 503 }, 'request');
  logger.warn({ buffered: 3 }, 'usage rows not written yet; will retry');
  logger.error({ requestIds: ['r-bad'] }, 'usage row refused by Postgres and dropped');
  logger.fatal('cannot start');
  // The two lines that record rows lost at shutdown (main.ts, services.ts).
  logger.error({ unwritten: 2 }, 'usage rows could not be written before exit');
  logger.error({ requestId: 'r-late' }, 'usage row recorded after the final write: dropped');
  return out;
}

const WARNINGS_AND_ERRORS = [
  'usage rows not written yet; will retry',
  'usage row refused by Postgres and dropped',
  'cannot start',
  'usage rows could not be written before exit',
  'usage row recorded after the final write: dropped',
] as const;

/** What `filter` selects from `input`: each line's request id, or its message. */
async function jq(filter: string, input: string): Promise<string[]> {
  const run = exec('jq', ['-c', filter], { timeout: 10_000 });
  run.child.stdin?.end(input);
  const { stdout } = await run;
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const line = JSON.parse(l) as { msg: string; reqId?: string };
      return line.reqId ?? line.msg;
    });
}

describe("the runbook's log filters", () => {
  it('are all checked here', () => {
    assert.equal(filters.length, 5, `the runbook has ${filters.length} jq filters: give each a case below`);
  });

  const levelOnly = filters.filter((f) => !f.includes('status') && !f.includes('.msg'));

  it('warnings and errors: exactly those lines', async () => {
    const lines = loggedLines();
    assert.equal(levelOnly.length, 2, 'the app and certd filters');
    for (const f of levelOnly) assert.deepEqual(await jq(f, lines), [...WARNINGS_AND_ERRORS]);
  });

  it('warnings, errors and 5xx answers', async () => {
    const [f] = filters.filter((f) => f.includes('status'));
    assert.deepEqual(await jq(f as string, loggedLines()), ['r-5xx', ...WARNINGS_AND_ERRORS]);
  });

  it('refused usage rows', async () => {
    const [f] = filters.filter((f) => f.includes('startswith'));
    assert.deepEqual(await jq(f as string, loggedLines()), ['usage row refused by Postgres and dropped']);
  });

  it('rows lost at shutdown', async () => {
    const [f] = filters.filter((f) => f.includes('before exit'));
    assert.deepEqual(await jq(f as string, loggedLines()), [
      'usage rows could not be written before exit',
      'usage row recorded after the final write: dropped',
    ]);
  });
});
