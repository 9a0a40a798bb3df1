import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cronMatches, parseCron, scheduleProblem } from '../../infra/backup-schedule.ts';
import { DEFAULTS, type Settings, settingsProblems } from '../../infra/config.ts';

// backupSchedule: the program's check and matcher (infra/backup-schedule.ts), and the shell
// matcher the backup container really runs (scripts/backup.sh), held against each other.

const SCRIPT = fileURLToPath(new URL('../../scripts/backup.sh', import.meta.url));

/** Asks scripts/backup.sh whether `expression` fires at `at` (UTC), as its loop would. */
function shellMatches(expression: string, at: Date): boolean {
  const fields = [
    at.getUTCMinutes(),
    at.getUTCHours(),
    at.getUTCDate(),
    at.getUTCMonth() + 1,
    at.getUTCDay(),
  ];
  const r = spawnSync('sh', [SCRIPT, 'matches', expression, ...fields.map(String)], {
    encoding: 'utf8',
    timeout: 5_000,
  });
  assert.ok(r.status === 0 || r.status === 1, `matches exited ${r.status}: ${r.stderr}`);
  return r.status === 0;
}

const at = (iso: string) => new Date(`${iso}Z`);

describe('backupSchedule: what the program accepts', () => {
  it('takes five-field expressions, macros and off', () => {
    for (const ok of [
      '0 3 * * *',
      '*/15 * * * *',
      '0 0-23/6 * * 1-5',
      '5,35 1,13 1,15 * 0',
      '0 3 * * 7',
      '@daily',
      '@hourly',
      'off',
    ]) {
      assert.equal(scheduleProblem(ok), undefined, ok);
    }
  });

  it('refuses what it cannot run, saying why', () => {
    const cases: [string, RegExp][] = [
      ['0 3 * *', /has 4 fields; cron needs 5/],
      ['0 3 * * * *', /has 6 fields/],
      ['60 3 * * *', /minute field "60": values run from 0 to 59/],
      ['0 24 * * *', /hour field/],
      ['0 3 0 * *', /day of month field/],
      ['0 3 * 13 *', /month field/],
      ['0 3 * * 8', /day of week field/],
      ['0 3 * * MON', /day of week field "MON": use \*, N/],
      ['0 3 * JAN *', /month field/],
      ['5/10 * * * *', /a step needs \* or a range/],
      ['*/0 * * * *', /use \*, N/],
      ['10-5 * * * *', /values run from/],
      ['05 3 * * *', /use \*, N/],
      ['0 3 ? * *', /use \*, N/],
      ['', /cron needs 5/],
    ];
    for (const [expression, message] of cases)
      assert.match(scheduleProblem(expression) ?? '', message, expression);
  });

  it('a bad schedule fails the stack configuration, naming the key and an example', () => {
    const s: Settings = { ...DEFAULTS, stack: 't', prefix: 'gpt-proxy-t', domain: 'api.example.com' };
    assert.deepEqual(settingsProblems(s), []);
    const problems = settingsProblems({ ...s, backupSchedule: 'daily' });
    assert.equal(problems.length, 1);
    assert.match(
      problems[0] ?? '',
      /^backupSchedule: .* \(e\.g\. "0 3 \* \* \*" for 03:00 UTC daily, or off\)$/,
    );
  });
});

describe('backupSchedule: when it fires', () => {
  it('follows cron: steps, ranges, lists, Sunday as 0 or 7, UTC', () => {
    const fires = (e: string, iso: string) => cronMatches(parseCron(e), at(iso));
    assert.ok(fires('0 3 * * *', '2025-03-04T03:00'));
    assert.ok(!fires('0 3 * * *', '2025-03-04T03:01'));
    assert.ok(fires('*/20 * * * *', '2025-03-04T17:40'));
    assert.ok(!fires('*/20 * * * *', '2025-03-04T17:50'));
    assert.ok(
      fires('10-50/20 * * * *', '2025-03-04T17:30') && !fires('10-50/20 * * * *', '2025-03-04T17:40'),
    );
    assert.ok(fires('0 0 * * 0', '2025-03-02T00:00') && fires('0 0 * * 7', '2025-03-02T00:00'), 'Sunday');
    assert.ok(!fires('0 0 * * 1-5', '2025-03-01T00:00'), 'Saturday');
    assert.ok(fires('@monthly', '2025-04-01T00:00') && !fires('@monthly', '2025-04-02T00:00'));
  });

  it('as Vixie cron: with both day fields restricted, either day matches', () => {
    const s = parseCron('0 12 1 * 1'); // the 1st, and every Monday
    assert.ok(cronMatches(s, at('2025-03-01T12:00')), 'the 1st, a Saturday');
    assert.ok(cronMatches(s, at('2025-03-03T12:00')), 'a Monday');
    assert.ok(!cronMatches(s, at('2025-03-04T12:00')));
    const starred = parseCron('0 12 */1 * 1'); // day of month starts with *: both must match
    assert.ok(!cronMatches(starred, at('2025-03-01T12:00')));
    assert.ok(cronMatches(starred, at('2025-03-03T12:00')));
  });

  it('the backup container decides exactly as the program does', () => {
    const expressions = [
      '0 3 * * *',
      '*/15 * * * *',
      '10-50/20 */6 * * *',
      '0 0 1 * 1',
      '0 0 */1 * 1',
      '30 2 * * 1-5',
      '0 12 * * 0',
      '0 12 * * 7',
      '0 0 31 12 *',
      '59 23 1,15,31 1,6,12 *',
      '0 0 * * 6,7',
      '@daily',
      '@weekly',
      '@hourly',
    ];
    const times = [
      '2025-01-01T00:00', // a Wednesday, the year's first minute
      '2025-03-02T12:00', // a Sunday
      '2025-03-03T00:00', // a Monday
      '2025-03-08T00:00', // a Saturday
      '2025-06-15T23:59',
      '2025-12-31T00:00',
      '2025-12-31T23:59',
      '2025-07-04T03:00',
      '2025-07-04T02:30',
      '2025-07-05T02:30',
      '2025-02-01T00:00', // a Saturday, the 1st
      '2025-09-01T12:30', // a Monday, the 1st
      '2025-05-18T06:10',
      '2025-05-18T06:50',
      '2025-05-18T18:30',
      '2025-10-31T03:45',
    ].map(at);
    let fired = 0;
    for (const e of expressions) {
      const schedule = parseCron(e);
      for (const t of times) {
        const expected = cronMatches(schedule, t);
        assert.equal(shellMatches(e, t), expected, `${e} at ${t.toISOString()}`);
        if (expected) fired++;
      }
    }
    assert.ok(fired > 20, `the cases include firing minutes (${fired})`);
  });

  it('the container refuses a malformed schedule rather than never firing', () => {
    const r = spawnSync('sh', [SCRIPT, 'matches', '0 3 * *', '0', '3', '1', '1', '3'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not a five-field cron expression/);
  });
});
