/**
 * Dependency order. A resource's dependencies are the URNs Pulumi registered for it plus its
 * provider; a dependency on a component resource stands for every custom resource below it.
 * `inDependencyOrder` runs each node once all its dependencies have finished, independent ones in
 * parallel (as Pulumi's engine does), stops starting new ones after the first failure, and
 * rethrows that failure once the ones already running have ended.
 */
import type { CapturedResource } from './types.ts';

/** Custom resource URN → the custom resource URNs it depends on. */
export function customDependencies(resources: readonly CapturedResource[]): Map<string, string[]> {
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const children = new Map<string, string[]>();
  for (const r of resources) {
    if (r.parent) children.set(r.parent, [...(children.get(r.parent) ?? []), r.urn]);
  }
  const expand = (urn: string, seen: Set<string>): string[] => {
    const r = byUrn.get(urn);
    if (!r) throw new Error(`applier: a dependency on ${urn}, which the program did not register`);
    if (r.custom) return [urn];
    if (seen.has(urn)) return [];
    seen.add(urn);
    return (children.get(urn) ?? []).flatMap((child) => expand(child, seen));
  };
  const result = new Map<string, string[]>();
  for (const r of resources) {
    if (!r.custom) continue;
    const direct = [...r.dependencies, ...(r.provider ? [r.provider] : [])];
    result.set(
      r.urn,
      [...new Set(direct.flatMap((urn) => expand(urn, new Set())))].filter((u) => u !== r.urn),
    );
  }
  return result;
}

/** The dependency relation reversed (who depends on each node), for deleting. */
export function dependents(deps: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const out = new Map<string, string[]>([...deps.keys()].map((k) => [k, []]));
  for (const [node, on] of deps) for (const d of on) out.get(d)?.push(node);
  return out;
}

class Skipped extends Error {}

/** Runs `run(node)` for every node after its dependencies (within `deps`' keys). */
export async function inDependencyOrder(
  deps: ReadonlyMap<string, readonly string[]>,
  run: (node: string) => Promise<void>,
): Promise<void> {
  const started = new Map<string, Promise<void>>();
  let failed = false;
  const visiting = new Set<string>();
  const start = (node: string): Promise<void> => {
    const existing = started.get(node);
    if (existing) return existing;
    if (visiting.has(node)) throw new Error(`applier: a dependency cycle through ${node}`);
    visiting.add(node);
    const before = (deps.get(node) ?? []).filter((d) => deps.has(d)).map(start);
    visiting.delete(node);
    const promise = Promise.all(before).then(async () => {
      if (failed) throw new Skipped();
      try {
        await run(node);
      } catch (err) {
        failed = true;
        throw err;
      }
    });
    started.set(node, promise);
    return promise;
  };
  const all = [...deps.keys()].map(start);
  const results = await Promise.allSettled(all);
  const failure = results.find(
    (r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof Skipped),
  );
  if (failure) throw failure.reason;
}
