/**
 * What the capture step records of a Pulumi program run under mocks, and what the applier keeps
 * of what it applied (its "state"): plain JSON, so a capture can come from a child process and a
 * state can be compared between two applies.
 */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** One RegisterResource request as the engine would receive it, secrets unwrapped. */
export interface CapturedResource {
  urn: string;
  type: string;
  /** The logical name (unique per type in the programs the applier takes). */
  name: string;
  /** false for component resources and the stack, which create nothing. */
  custom: boolean;
  parent: string;
  /** URN of the explicit provider ('' for the default one). */
  provider: string;
  /** URNs this resource depends on: explicit `dependsOn` and every input's resources. */
  dependencies: string[];
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  retainOnDelete: boolean;
  inputs: JsonObject;
}

/** A provider function the program called (e.g. `command:local:run`), with its inputs. */
export interface CapturedInvoke {
  token: string;
  inputs: JsonObject;
}

export interface Capture {
  stack: string;
  resources: CapturedResource[];
  invokes: CapturedInvoke[];
  /** The stack's outputs as the mocked run resolved them (plain values). */
  outputs: JsonObject;
}

/** Real values a resource produced: `id` and whatever its type outputs (imageId, stdout, …). */
export type Outputs = Record<string, string>;

export interface AppliedResource {
  urn: string;
  type: string;
  name: string;
  /** Inputs with every output reference replaced by its real value (what the diff compares). */
  inputs: JsonObject;
  outputs: Outputs;
  /** URNs of the custom resources it depends on (for deleting in reverse order). */
  dependencies: string[];
  /** URN of its provider resource, or ''. */
  provider: string;
  retainOnDelete: boolean;
}

/** What is applied: by URN, plus replaced resources whose deletion is still due. */
export interface StackState {
  resources: Record<string, AppliedResource>;
  pendingDeletes: AppliedResource[];
}

export function emptyState(): StackState {
  return { resources: {}, pendingDeletes: [] };
}

export type Action = 'created' | 'replaced' | 'updated' | 'unchanged' | 'deleted';

export interface ApplyReport {
  /** Logical names by what happened to them. */
  created: string[];
  replaced: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
  /** Commands (hooks) whose `create` ran, in the order they finished. */
  ran: string[];
  /** stdout of each invoke of the program, in call order. */
  invokes: Array<{ token: string; stdout: string }>;
  /** One line per step, with seconds since the apply began. */
  events: string[];
}
