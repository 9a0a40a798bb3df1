/**
 * Deleting applied resources, dependents before what they depend on (independent ones in
 * parallel): what the program no longer declares and replaced ones at the end of an apply, and
 * everything for `destroyStack`, which leaves resources marked `retainOnDelete` in the engine, as
 * `pulumi destroy` does, and returns them.
 */
import type { DriverContext } from './driver.ts';
import { driverFor } from './drivers.ts';
import { dependents, inDependencyOrder } from './graph.ts';
import type { AppliedResource, StackState } from './types.ts';

/** Deletes `targets` and drops each from `state` once it is gone. */
export async function deleteAll(
  targets: readonly AppliedResource[],
  state: StackState,
  ctx: DriverContext,
  onDeleted: (a: AppliedResource) => void = () => {},
): Promise<void> {
  const key = new Map(targets.map((a, i) => [a, String(i)]));
  const byKey = new Map(targets.map((a, i) => [String(i), a]));
  const dependsOn = new Map(
    targets.map((a) => [
      key.get(a) ?? '',
      targets.filter((t) => t !== a && a.dependencies.includes(t.urn)).map((t) => key.get(t) ?? ''),
    ]),
  );
  await inDependencyOrder(dependents(dependsOn), async (k) => {
    const a = byKey.get(k) as AppliedResource;
    if (!a.retainOnDelete) await driverFor(a).delete(ctx, a);
    if (state.resources[a.urn] === a) delete state.resources[a.urn];
    state.pendingDeletes = state.pendingDeletes.filter((p) => p !== a);
    onDeleted(a);
  });
}

/** Deletes everything `state` holds; returns what was retained (`retainOnDelete`). */
export async function destroyStack(
  state: StackState,
  ctx: Omit<DriverContext, 'log'> & { log?: (line: string) => void },
): Promise<AppliedResource[]> {
  const all = [...state.pendingDeletes, ...Object.values(state.resources)];
  const log = (line: string) => ctx.log?.(line);
  await deleteAll(all, state, { ...ctx, log }, (a) => log(`deleted ${a.name}`));
  return all.filter((a) => a.retainOnDelete);
}
