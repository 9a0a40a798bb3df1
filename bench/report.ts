// What the benchmark prints: the machine it ran on, the median figures as a Markdown table, and
// the issue's goals checked against them.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { HoldResult } from './streams.ts';

export const MODES = ['json', 'stream'] as const;
export type Mode = (typeof MODES)[number];
export const TARGETS = ['fake', 'passthrough', 'proxy'] as const;
export type TargetName = (typeof TARGETS)[number];

export type Figures = Record<TargetName, Record<Mode, { rps: number; p50: number; p99: number }>>;

/** The median; NaN when any run was invalid (had failures), so a broken figure cannot pass. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0 || xs.some(Number.isNaN)) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Line counts of the proxy's log by level (one access-log line per request is expected at info). */
export function logSummary(file: string): string {
  const count = (level: string) => {
    try {
      return execFileSync('grep', ['-c', `"level":"${level}"`, file], { encoding: 'utf8' }).trim();
    } catch {
      return '0'; // grep exits 1 when nothing matches
    }
  };
  const counts = ['info', 'warn', 'error', 'fatal'].map((l) => `${l} ${count(l)}`).join(', ');
  return `${counts}${problems(file)}`;
}

/** The distinct messages of warn and worse lines (the log holds no secrets), with their counts. */
function problems(file: string): string {
  let lines: string[];
  try {
    lines = execFileSync('grep', ['-E', '"level":"(warn|error|fatal)"', file], { encoding: 'utf8' }).split(
      '\n',
    );
  } catch {
    return ''; // none
  }
  const seen = new Map<string, number>();
  for (const line of lines.filter(Boolean)) {
    const { level, msg, error } = JSON.parse(line) as {
      level: string;
      msg: string;
      error?: { message?: string };
    };
    const what = `${level}: ${msg}${error?.message ? ` (${error.message})` : ''}`;
    seen.set(what, (seen.get(what) ?? 0) + 1);
  }
  return `; ${[...seen].map(([what, n]) => `${n}× ${what}`).join('; ')}`;
}

/** The median figures of every target and mode. */
export function figures(
  rps: Record<TargetName, Record<Mode, number[]>>,
  lat: Record<TargetName, Record<Mode, Array<{ p50: number; p99: number }>>>,
): Figures {
  const one = (t: TargetName, m: Mode) => ({
    rps: median(rps[t][m]),
    p50: median(lat[t][m].map((x) => x.p50)),
    p99: median(lat[t][m].map((x) => x.p99)),
  });
  const fig = {} as Figures;
  for (const t of TARGETS) fig[t] = { json: one(t, 'json'), stream: one(t, 'stream') };
  return fig;
}

/** Half the median throughput of each mode: the fixed rate of the latency runs. */
export function halfOf(rps: Record<Mode, number[]>): Record<Mode, number> {
  return { json: Math.floor(median(rps.json) / 2), stream: Math.floor(median(rps.stream) / 2) };
}

export function machineInfo(): string[] {
  const model =
    /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model;
  return [
    `date: ${execFileSync('date', ['-u'], { encoding: 'utf8' }).trim()}`,
    `machine: nproc ${execFileSync('nproc', { encoding: 'utf8' }).trim()}, CPU ${model}, memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`,
    `node: ${process.version}`,
  ];
}

const LABEL: Record<TargetName, string> = {
  fake: '(a) fake upstream direct',
  passthrough: '(b) bare pass-through',
  proxy: '(c) gpt-proxy (auth + limits + usage)',
};

const f1 = (n: number) => n.toFixed(2);

export function table(fig: Figures, rate: Record<Mode, number>): string[] {
  const lines = [
    `| target | json req/s @64 | json p50 / p99 ms @${rate.json}/s | stream req/s @64 | stream p50 / p99 ms @${rate.stream}/s |`,
    '|---|---:|---:|---:|---:|',
  ];
  for (const t of TARGETS) {
    const j = fig[t].json;
    const s = fig[t].stream;
    lines.push(
      `| ${LABEL[t]} | ${Math.round(j.rps)} | ${f1(j.p50)} / ${f1(j.p99)} | ${Math.round(s.rps)} | ${f1(s.p50)} / ${f1(s.p99)} |`,
    );
  }
  return lines;
}

/** p50 / p99 of (b) and (c) at a rate of half (c)'s own throughput. */
export function supplementary(
  lat: Record<TargetName, Record<Mode, Array<{ p50: number; p99: number }>>>,
  rate: Record<Mode, number>,
): string[] {
  const lines = [
    `| target | json p50 / p99 ms @${rate.json}/s | stream p50 / p99 ms @${rate.stream}/s |`,
    '|---|---:|---:|',
  ];
  for (const t of ['passthrough', 'proxy'] as const) {
    const cell = (m: Mode) => {
      const l = lat[t][m];
      return `${f1(median(l.map((x) => x.p50)))} / ${f1(median(l.map((x) => x.p99)))}`;
    };
    lines.push(`| ${LABEL[t]} | ${cell('json')} | ${cell('stream')} |`);
  }
  return lines;
}

/** The issue's three goals, each with its figures and PASS/MISS. */
export function goals(fig: Figures, hold: HoldResult): string[] {
  const mark = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const out: string[] = [];
  for (const m of MODES) {
    const ratio = fig.proxy[m].rps / fig.passthrough[m].rps;
    out.push(`${mark(ratio >= 0.6)} ${m}: (c) is ${(100 * ratio).toFixed(1)}% of (b)'s req/s (goal >= 60%)`);
  }
  for (const m of MODES) {
    const delta = fig.proxy[m].p99 - fig.passthrough[m].p99;
    out.push(
      `${mark(delta <= 5)} ${m}: (c) p99 is ${f1(delta)} ms above (b)'s at the fixed rate (goal <= 5 ms)`,
    );
  }
  const held = hold.opened === hold.count && hold.completed === hold.count;
  out.push(
    `${mark(held && hold.rssHeldMB < 200)} ${hold.count} open streams through (c): RSS ${hold.rssHeldMB.toFixed(0)} MB (goal < 200 MB); opened ${hold.opened}, completed ${hold.completed}`,
  );
  return out;
}
