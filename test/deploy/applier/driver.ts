/**
 * What the applier needs of each resource type: check the inputs (refusing what it cannot
 * translate) before anything is touched, create the real object and report its outputs, delete
 * it. One driver per type; the applier (apply.ts) decides when each runs.
 */
import type { DockerCli } from '../../docker/cli.ts';
import type { Engine } from './engine.ts';
import type { InputReader } from './inputs.ts';
import type { AppliedResource, Outputs } from './types.ts';

export interface DriverContext {
  /** The engine of the stack's docker provider (the test engine). */
  engine: Engine;
  /** The docker CLI for that engine (image builds). */
  cli: DockerCli;
  /** Environment of the machine "running Pulumi": hooks run with it plus their own. */
  hookEnv: NodeJS.ProcessEnv;
  /** A private directory for build logs. */
  workDir: string;
  /** The only address ports may be published on. */
  publishOn: string;
  /** Longest a command hook or a container's health wait may take, whatever it asks for. */
  maxWaitMs: number;
  log(line: string): void;
}

export interface Driver {
  /** Talks to a docker provider's engine (so the resource must name one). */
  readonly docker: boolean;
  /**
   * Reads something besides its inputs (a build context, a registry): it runs on every apply,
   * and counts as changed only when its outputs do.
   */
  readonly readsOutside?: boolean;
  /** Throws an ApplierRefusal for any input it cannot translate. */
  check(inputs: InputReader): void;
  /** Creates the object from resolved inputs; `name` is the resource's logical name. */
  create(ctx: DriverContext, inputs: InputReader, name: string): Promise<Outputs>;
  delete(ctx: DriverContext, applied: AppliedResource): Promise<void>;
}
