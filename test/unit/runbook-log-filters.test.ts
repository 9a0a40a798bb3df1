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
  return out;
}

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
    assert.equal(filters.length, 4, `the runbook has ${filters.length} jq filters: give each a case below`);
  });

  it('warnings and errors: exactly those lines', async () => {
    const lines = loggedLines();
    for (const f of filters.filter((f) => !f.includes('status') && !f.includes('startswith'))) {
      assert.deepEqual(await jq(f, lines), [
        'usage rows not written yet; will retry',
        'usage row refused by Postgres and dropped',
        'cannot start',
      ]);
    }
  });

  it('warnings, errors and 5xx answers', async () => {
    const [f] = filters.filter((f) => f.includes('status'));
    assert.deepEqual(await jq(f as string, loggedLines()), [
      'r-5xx',
      'usage rows not written yet; will retry',
      'usage row refused by Postgres and dropped',
      'cannot start',
    ]);
  });

  it('refused usage rows', async () => {
    const [f] = filters.filter((f) => f.includes('startswith'));
    assert.deepEqual(await jq(f as string, loggedLines()), ['usage row refused by Postgres and dropped']);
  });
});
