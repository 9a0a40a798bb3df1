/**
 * The applier: takes a capture (capture.ts) and makes the engine match it, as `pulumi up` would.
 * First every resource and invoke is checked, so an input it cannot translate stops it before
 * anything is touched. Then each custom resource takes its turn (step.ts) once its dependencies
 * have had theirs, with its output references replaced by the real values; then replaced
 * resources and those the program no longer declares are deleted (destroy.ts), and the invokes
 * run. The state is updated as it goes, so whatever was created is known to `destroyStack` even
 * when an apply fails half way.
 */
import { checkInvoke, runShell, shellSpec } from './command-driver.ts';
import { deleteAll } from './destroy.ts';
import type { DriverContext } from './driver.ts';
import { driverFor } from './drivers.ts';
import { customDependencies, inDependencyOrder } from './graph.ts';
import { InputReader, refuse } from './inputs.ts';
import { resolveRefs, resourceKey } from './refs.ts';
import { applyStep } from './step.ts';
import type {
  AppliedResource,
  ApplyReport,
  Capture,
  CapturedResource,
  JsonObject,
  StackState,
} from './types.ts';

export type ApplierContext = Omit<DriverContext, 'log'> & {
  /** Called after each resource is in place (awaited before its dependents start). */
  onApplied?: (resource: AppliedResource) => Promise<void> | void;
  log?: (line: string) => void;
};

/** Refuses, before anything runs, whatever the drivers cannot translate. */
export function checkCapture(capture: Capture): void {
  for (const r of capture.resources.filter((x) => x.custom)) {
    const driver = driverFor(r);
    for (const path of r.ignoreChanges) {
      if (!/^\w+$/.test(path)) refuse(r, path, 'in ignoreChanges: only top-level inputs are translated');
    }
    if (driver.docker && !r.provider)
      refuse(r, '(provider)', 'is not set: an explicit docker provider is needed');
    driver.check(new InputReader(r, r.inputs));
  }
  capture.invokes.forEach((call, i) => {
    checkInvoke(new InputReader({ type: 'invoke', name: `#${i}` }, call.inputs), call.token);
  });
}

/** Applies `capture` to the engine, updating `state` in place. */
export async function applyCapture(
  capture: Capture,
  state: StackState,
  ctx: ApplierContext,
): Promise<ApplyReport> {
  checkCapture(capture);
  const began = Date.now();
  const report: ApplyReport = {
    ...{ created: [], replaced: [], updated: [], unchanged: [], deleted: [] },
    ...{ ran: [], invokes: [], events: [] },
  };
  const event = (line: string) => {
    const stamped = `${((Date.now() - began) / 1000).toFixed(1)}s ${line}`;
    report.events.push(stamped);
    ctx.log?.(stamped);
  };
  const dctx: DriverContext = { ...ctx, log: (line) => event(`  ${line}`) };
  const byUrn = new Map(capture.resources.map((r) => [r.urn, r]));
  const outputs = new Map<string, Record<string, string>>();
  const lookup = (key: string, prop: string) => outputs.get(key)?.[prop];
  const deps = customDependencies(capture.resources);

  await inDependencyOrder(deps, async (urn) => {
    const r = byUrn.get(urn) as CapturedResource;
    const started = Date.now();
    const inputs = resolveRefs(r.inputs, lookup, `${r.type} "${r.name}"`) as JsonObject;
    const step = await applyStep(r, inputs, state, dctx);
    report[step.action].push(r.name);
    if (step.action !== 'unchanged') {
      event(`${step.action} ${r.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }
    if (r.type === 'command:local:Command' && step.action !== 'unchanged') report.ran.push(r.name);
    outputs.set(resourceKey(r.type, r.name), step.outputs);
    const applied: AppliedResource = {
      ...{ urn, type: r.type, name: r.name, inputs: step.inputs, outputs: step.outputs },
      ...{ dependencies: deps.get(urn) ?? [], provider: r.provider, retainOnDelete: r.retainOnDelete },
    };
    state.resources[urn] = applied;
    await ctx.onApplied?.(applied);
  });

  const gone = Object.values(state.resources).filter((a) => !byUrn.has(a.urn));
  await deleteAll([...state.pendingDeletes, ...gone], state, dctx, (a) => {
    if (gone.includes(a)) report.deleted.push(a.name);
    event(`deleted ${a.name}${gone.includes(a) ? '' : ' (replaced)'}`);
  });

  for (const [i, call] of capture.invokes.entries()) {
    const resolved = resolveRefs(call.inputs, lookup, `invoke #${i}`) as JsonObject;
    const spec = shellSpec(new InputReader({ type: call.token, name: `#${i}` }, resolved));
    const { stdout } = await runShell(dctx, `invoke ${call.token}`, spec);
    report.invokes.push({ token: call.token, stdout });
  }
  return report;
}
