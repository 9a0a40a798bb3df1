/**
 * The e2e test's deployment: the `e2e` stack on the test bed's engine, applied by the applier,
 * with the surroundings (pebble, its DNS, the fake upstream) started on the stack's `edge` network
 * as soon as the applier has created it, and the domain pointed at the nginx container as soon as
 * that exists, before the issue-cert hook runs. One per test file; its state lives across applies.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ImageTags } from '../docker/recipes.ts';
import type { TestBed } from '../docker/testbed.ts';
import { freePort, registerTempDir } from '../helpers/processes.ts';
import { type ApplierContext, applyCapture } from './applier/apply.ts';
import { captureProgram } from './applier/capture.ts';
import { destroyStack } from './applier/destroy.ts';
import { Engine } from './applier/engine.ts';
import { randomOutputs } from './applier/mocks.ts';
import { type AppliedResource, type ApplyReport, type Capture, emptyState } from './applier/types.ts';
import type { Edge } from './edge-client.ts';
import { DOMAIN, e2eStack, PREFIX } from './stack.ts';
import { addressOn, pebbleTlsCa, type Surroundings, startSurroundings } from './surroundings.ts';

export interface Deployment {
  /** HTTPS to nginx's published port; `ca` is filled in once pebble's root is known. */
  readonly edge: Edge;
  /** Runs the program under mocks with this `rateLimitRpm` (everything else fixed). */
  capture(rateLimitRpm: number): Promise<Capture>;
  /**
   * Every secret value of the stack a capture declares, worked out apart from what the program
   * does with them: the `--secret` settings (each list item too) and what @pulumi/random made.
   */
  secretValues(capture: Capture): string[];
  /** Applies a capture; its events become test diagnostics, or go with the error. */
  apply(t: TestContext, capture: Capture): Promise<ApplyReport>;
  /** The applied resource with this logical name. */
  applied(name: string): AppliedResource | undefined;
  surroundings(): Surroundings;
  /** Removes the surroundings, then destroys the stack; returns what was retained. */
  destroy(): Promise<AppliedResource[]>;
  /** Whether anything of the stack is still applied. */
  empty(): boolean;
}

export async function prepareDeployment(bed: TestBed, tags: ImageTags): Promise<Deployment> {
  const state = emptyState();
  const seed = randomBytes(16).toString('hex');
  const caBundle = await pebbleTlsCa(bed, tags);
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const edge: Edge = { port: httpsPort, domain: DOMAIN, ca: '' };
  const workDir = mkdtempSync(join(tmpdir(), 'gpt-proxy-e2e-'));
  registerTempDir(workDir);
  let surroundings: Surroundings | undefined;
  const ctx: ApplierContext = {
    engine: new Engine(bed.cli.host),
    cli: bed.cli,
    hookEnv: bed.cli.env(),
    workDir,
    publishOn: '127.0.0.1',
    maxWaitMs: 6 * 60_000,
    onApplied: async (r) => {
      if (r.inputs.name === `${PREFIX}-edge` && !surroundings) {
        surroundings = await startSurroundings(bed, tags, `${PREFIX}-edge`);
      }
      if (r.inputs.name === `${PREFIX}-nginx` && surroundings) {
        await surroundings.pointAt(DOMAIN, await addressOn(bed, `${PREFIX}-nginx`, `${PREFIX}-edge`));
      }
    },
  };
  const stack = (rateLimitRpm: number) =>
    e2eStack({ cli: bed.cli, tags, caBundle, httpPort, httpsPort, rateLimitRpm, seed });
  return {
    edge,
    capture: (rateLimitRpm) => captureProgram(stack(rateLimitRpm)),
    secretValues: (capture) => {
      const configured = Object.values(stack(0).secrets).flatMap((v) => [v, ...v.split(',')]);
      const generated = capture.resources
        .filter((r) => r.type.startsWith('random:'))
        .flatMap((r) => Object.values(randomOutputs(r.type, r.name, r.inputs, seed)))
        .filter((v): v is string => typeof v === 'string');
      return [...new Set([...configured, ...generated])];
    },
    apply: async (t, capture) => {
      const events: string[] = [];
      try {
        const report = await applyCapture(capture, state, { ...ctx, log: (line) => events.push(line) });
        for (const line of report.events) t.diagnostic(`applier: ${line}`);
        return report;
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- applier events ---\n${events.join('\n')}`);
      }
    },
    applied: (name) => Object.values(state.resources).find((r) => r.name === name),
    surroundings: () => {
      if (!surroundings) throw new Error('the surroundings start with the stack’s edge network');
      return surroundings;
    },
    destroy: async () => {
      await surroundings?.remove();
      return destroyStack(state, ctx);
    },
    empty: () => Object.keys(state.resources).length === 0 && state.pendingDeletes.length === 0,
  };
}
