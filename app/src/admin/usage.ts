import { z } from 'zod';
import { REPORT_TIMEOUT_MS, sharedBound } from '../db/pool.ts';
import { ApiError } from '../errors.ts';
import { type AdminRoute, defineRoute } from './route.ts';
import { idParam, timeParam } from './validation.ts';

const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const MAX_GROUPS = 1000;

export const usageQuery = z.strictObject({
  group_by: z
    .enum(['user', 'key', 'model', 'day'], { error: "'group_by' must be one of user, key, model, day" })
    .default('day'),
  from: timeParam('from').optional(),
  to: timeParam('to').optional(),
  user_id: idParam('user_id').optional(),
  key_id: idParam('key_id').optional(),
});

// Fixed SQL per grouping (the request only picks one by name). Days are UTC days.
const DAY = `to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
const GROUPS = {
  user: { group: 'l.user_id', label: 'u.username', join: 'LEFT JOIN users u ON u.id = l.user_id' },
  key: {
    group: 'l.api_key_id',
    label: `concat_ws(' ', nullif(k.name, ''), k.display_prefix)`,
    join: 'LEFT JOIN api_keys k ON k.id = l.api_key_id',
  },
  model: { group: 'l.model', label: 'l.model', join: '' },
  day: { group: DAY, label: DAY, join: '' },
} as const;

// Sums are cast to float8 so pg hands back JS numbers (exact far beyond any token count).
const TOTALS = `count(*)::int AS requests, count(*) FILTER (WHERE l.status_code >= 400)::int AS errors,
  sum(l.prompt_tokens)::float8 AS prompt_tokens, sum(l.completion_tokens)::float8 AS completion_tokens,
  sum(l.total_tokens)::float8 AS total_tokens`;
const WHERE = `l.created_at >= $1 AND l.created_at < $2
  AND ($3::int IS NULL OR l.user_id = $3) AND ($4::int IS NULL OR l.api_key_id = $4)`;

interface Totals {
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}
const ZERO: Totals = { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

/** Every UTC day from the one holding `from` up to `to`, with zeros where nothing was used. */
function fillDays(from: Date, to: Date, rows: Array<Totals & { day: string }>) {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const series: Array<Totals & { day: string }> = [];
  for (let t = Math.floor(from.getTime() / DAY_MS) * DAY_MS; t < to.getTime(); t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    series.push(byDay.get(day) ?? { day, ...ZERO });
  }
  return series;
}

/**
 * `GET /usage`: totals over [from, to) (default: the last 30 days), one row per group (user, key,
 * model or UTC day, busiest first), and a per-day series for charts.
 */
export const usageRoutes: AdminRoute[] = [
  defineRoute({
    method: 'GET',
    path: '/usage',
    summary: 'Usage totals, per group and per day',
    query: usageQuery,
    async handle({ query, deps }) {
      const to = query.to ?? new Date();
      const from = query.from ?? new Date(to.getTime() - 30 * DAY_MS);
      if (from >= to) throw new ApiError('invalid_request', "'from' must be before 'to'.", { param: 'from' });
      if (to.getTime() - from.getTime() > MAX_DAYS * DAY_MS) {
        throw new ApiError(
          'invalid_request',
          `The range from 'from' to 'to' must be at most ${MAX_DAYS} days.`,
          {
            param: 'from',
          },
        );
      }
      const params = [from, to, query.user_id ?? null, query.key_id ?? null];
      // Both reports within one bound: nobody reads an answer after nginx's 340 s.
      const report = sharedBound(REPORT_TIMEOUT_MS);
      const daily = await deps.db.query<Totals & { day: string }>(
        report(
          `SELECT ${DAY} AS day, ${TOTALS} FROM usage_logs l WHERE ${WHERE} GROUP BY 1 ORDER BY 1`,
          params,
        ),
      );
      const series = fillDays(from, to, daily.rows);
      const totals = { ...ZERO };
      for (const day of series) for (const k of Object.keys(ZERO) as Array<keyof Totals>) totals[k] += day[k];

      const g = GROUPS[query.group_by];
      const order = query.group_by === 'day' ? '1' : 'total_tokens DESC, requests DESC, 1';
      const groups = await deps.db.query(
        report(
          `SELECT ${g.group} AS "group", ${g.label} AS label, ${TOTALS}
           FROM usage_logs l ${g.join} WHERE ${WHERE}
           GROUP BY 1, 2 ORDER BY ${order} LIMIT ${MAX_GROUPS}`,
          params,
        ),
      );
      return { object: 'usage', group_by: query.group_by, from, to, totals, data: groups.rows, series };
    },
  }),
];
