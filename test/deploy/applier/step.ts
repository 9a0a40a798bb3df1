/**
 * One resource's turn in an apply, as Pulumi's engine decides it: its inputs (references already
 * resolved) are compared with what the previous apply used, leaving out `ignoreChanges` (whose
 * old values are kept). Equal: nothing happens, unless the driver reads something besides its
 * inputs (an image build), which runs again and counts as changed only if its outputs do.
 * Different: a replacement - delete-first when the program asks for `deleteBeforeReplace`, else
 * the new one is created first and the old one queued for deletion at the end.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DriverContext } from './driver.ts';
import { driverFor } from './drivers.ts';
import { InputReader } from './inputs.ts';
import type { AppliedResource, CapturedResource, JsonObject, Outputs, StackState } from './types.ts';

export type StepAction = 'created' | 'replaced' | 'updated' | 'unchanged';

function split(inputs: JsonObject, ignored: readonly string[]): [JsonObject, JsonObject] {
  const entries = Object.entries(inputs);
  return [
    Object.fromEntries(entries.filter(([k]) => !ignored.includes(k))),
    Object.fromEntries(entries.filter(([k]) => ignored.includes(k))),
  ];
}

export interface StepResult {
  action: StepAction;
  /** The inputs to remember (ignored ones as before). */
  inputs: JsonObject;
  outputs: Outputs;
}

/** Brings one resource in line with `inputs`; `state` learns of deletions and queued ones. */
export async function applyStep(
  r: CapturedResource,
  inputs: JsonObject,
  state: StackState,
  ctx: DriverContext,
): Promise<StepResult> {
  const driver = driverFor(r);
  const previous: AppliedResource | undefined = state.resources[r.urn];
  const [compared] = split(inputs, r.ignoreChanges);
  const [before, keptIgnored] = previous ? split(previous.inputs, r.ignoreChanges) : [undefined, {}];
  const kept = { ...inputs, ...keptIgnored };
  const same = previous?.type === r.type && isDeepStrictEqual(before, compared);
  if (previous && same && !driver.readsOutside) {
    return { action: 'unchanged', inputs: kept, outputs: previous.outputs };
  }
  if (previous && !same) {
    if (r.deleteBeforeReplace) {
      await driver.delete(ctx, previous);
      delete state.resources[r.urn];
    } else {
      state.pendingDeletes.push(previous);
    }
  }
  const outputs = await driver.create(ctx, new InputReader(r, kept), r.name);
  if (!previous) return { action: 'created', inputs: kept, outputs };
  if (!same) return { action: 'replaced', inputs: kept, outputs };
  return {
    action: isDeepStrictEqual(outputs, previous.outputs) ? 'unchanged' : 'updated',
    inputs: kept,
    outputs,
  };
}
