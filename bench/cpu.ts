// Where the CPU went during one measurement: each benchmark process (as % of one core), each core's
// busy share, and "other" — machine CPU used by anything outside the benchmark, with the processes
// that used most of it. A large "other" means foreign load disturbed the figures; a core near 100%
// is the bottleneck.
import { readdirSync, readFileSync } from 'node:fs';
import { cpuCores, cpuTicks } from './procs.ts';

export interface CpuGroup {
  name: string;
  /** The PIDs making up the group, asked at each snapshot (Postgres backends come and go). */
  pids: () => number[];
}

export interface CpuReport {
  /** % of one core per group. */
  groups: Record<string, number>;
  /** Busy % of each core. */
  cores: number[];
  /** % of one core used outside the groups, and the processes that used most of it. */
  other: number;
  topOther: string[];
}

/** CPU ticks of every process on the machine, with its command name. */
function allProcesses(): Map<number, { ticks: number; comm: string }> {
  const out = new Map<number, { ticks: number; comm: string }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out.set(Number(entry), { ticks: cpuTicks(Number(entry)), comm });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Starts measuring; `stop()` returns what was used since. */
export function startCpuMeter(groups: readonly CpuGroup[]): { stop(): CpuReport } {
  const before = allProcesses();
  const coresBefore = cpuCores();
  return {
    stop() {
      const after = allProcesses();
      const coresAfter = cpuCores();
      // Every core advances by the same wall-clock ticks; their mean is the interval.
      const totals = coresAfter.map((c, i) => c.total - (coresBefore[i]?.total ?? 0));
      const interval = totals.reduce((a, b) => a + b, 0) / Math.max(1, totals.length);
      const pct = (ticks: number) => Math.round((100 * ticks) / Math.max(1, interval));
      // A process that exited in between took its ticks with it; it counts as other.
      const used = (pid: number) => Math.max(0, (after.get(pid)?.ticks ?? 0) - (before.get(pid)?.ticks ?? 0));
      const ours = new Set<number>();
      const groupsPct: Record<string, number> = {};
      let oursTicks = 0;
      for (const g of groups) {
        const pids = g.pids().filter((pid) => !ours.has(pid));
        for (const pid of pids) ours.add(pid);
        const ticks = pids.reduce((sum, pid) => sum + used(pid), 0);
        oursTicks += ticks;
        groupsPct[g.name] = pct(ticks);
      }
      const busy = coresAfter.map((c, i) => c.busy - (coresBefore[i]?.busy ?? 0));
      const foreign = [...after.keys()]
        .filter((pid) => !ours.has(pid))
        .map((pid) => ({ pid, comm: after.get(pid)?.comm ?? '?', ticks: used(pid) }))
        .filter((p) => pct(p.ticks) >= 3)
        .sort((a, b) => b.ticks - a.ticks)
        .slice(0, 3)
        .map((p) => `${p.comm}[${p.pid}] ${pct(p.ticks)}%`);
      const other = Math.max(0, pct(busy.reduce((a, b) => a + b, 0) - oursTicks));
      return { groups: groupsPct, cores: busy.map((b) => pct(b)), other, topOther: foreign };
    },
  };
}

/** One line: `cpu: proxy 97% fake 41% ... other 3% | cores 99% 95%`. */
export function formatCpu(r: CpuReport): string {
  const groups = Object.entries(r.groups)
    .map(([name, p]) => `${name} ${p}%`)
    .join(' ');
  const top = r.topOther.length > 0 ? ` (${r.topOther.join(', ')})` : '';
  return `cpu: ${groups} other ${r.other}%${top} | cores ${r.cores.map((c) => `${c}%`).join(' ')}`;
}
