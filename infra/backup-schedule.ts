// The backup schedule (`backupSchedule`): a five-field cron expression, evaluated in UTC by the
// backup container's own loop (scripts/backup.sh). This file checks it when the program runs, so a
// typo fails `pulumi preview` instead of a container, and implements the same matching, which a
// test holds against the shell's.
//
// The subset: minute hour day-of-month month day-of-week; each field a comma list of `*`, `N`,
// `N-M`, optionally `/STEP` after `*` or a range; day of week 0-7 (0 and 7 are Sunday). No names
// (MON, JAN), no `?`, `L`, `W` or `#`. The macros @hourly, @daily, @midnight, @weekly, @monthly,
// @yearly and @annually. As in Vixie cron, when both day fields are restricted (neither starts
// with `*`) a day matches if either does. `off`: no scheduled backups (manual ones still work).

export const BACKUPS_OFF = 'off';

export const MACROS: Readonly<Record<string, string>> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
};

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

interface Range {
  lo: number;
  hi: number;
  step: number;
}

interface Field {
  /** Starts with `*`: does not restrict (matters for the two day fields). */
  star: boolean;
  ranges: Range[];
}

export type CronSchedule = readonly [Field, Field, Field, Field, Field];

const PART = /^(\*|(0|[1-9]\d*)(?:-(0|[1-9]\d*))?)(?:\/([1-9]\d*))?$/;

function parseField(text: string, spec: (typeof FIELDS)[number]): Field {
  const ranges = text.split(',').map((part): Range => {
    const m = PART.exec(part);
    if (!m) throw new Error(`${spec.name} field "${text}": use *, N, N-M, */STEP or N-M/STEP`);
    const [, whole, from, to, step] = m;
    if (whole !== '*' && step !== undefined && to === undefined) {
      throw new Error(`${spec.name} field "${text}": a step needs * or a range (N-M/STEP)`);
    }
    const lo = whole === '*' ? spec.min : Number(from);
    const hi = whole === '*' ? spec.max : Number(to ?? from);
    if (lo < spec.min || hi > spec.max || lo > hi) {
      throw new Error(`${spec.name} field "${text}": values run from ${spec.min} to ${spec.max}`);
    }
    return { lo, hi, step: Number(step ?? 1) };
  });
  return { star: text.startsWith('*'), ranges };
}

/** Parses a schedule (not `off`); throws an Error saying what is wrong. */
export function parseCron(expression: string): CronSchedule {
  const expanded = MACROS[expression.trim()] ?? expression.trim();
  const words = expanded.split(/\s+/);
  if (words.length !== 5) {
    throw new Error(
      `"${expression}" has ${words.length} fields; cron needs 5: minute hour day month weekday`,
    );
  }
  return words.map((w, i) => parseField(w, FIELDS[i] as (typeof FIELDS)[number])) as unknown as CronSchedule;
}

/** What is wrong with a `backupSchedule` value, or undefined when it is fine (`off` included). */
export function scheduleProblem(expression: string): string | undefined {
  if (expression === BACKUPS_OFF) return undefined;
  try {
    parseCron(expression);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function fieldMatches(field: Field, value: number): boolean {
  return field.ranges.some((r) => value >= r.lo && value <= r.hi && (value - r.lo) % r.step === 0);
}

/** Whether the schedule fires in the minute `at` falls in, in UTC. */
export function cronMatches(schedule: CronSchedule, at: Date): boolean {
  const [minute, hour, dom, month, dow] = schedule;
  const weekday = at.getUTCDay();
  const domHit = fieldMatches(dom, at.getUTCDate());
  const dowHit = fieldMatches(dow, weekday) || (weekday === 0 && fieldMatches(dow, 7));
  const dayHit = dom.star || dow.star ? domHit && dowHit : domHit || dowHit;
  return (
    fieldMatches(minute, at.getUTCMinutes()) &&
    fieldMatches(hour, at.getUTCHours()) &&
    fieldMatches(month, at.getUTCMonth() + 1) &&
    dayHit
  );
}
