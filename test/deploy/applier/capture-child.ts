/**
 * The capture step's process: `node capture-child.ts REQUEST.json RESULT.json`. It runs the Pulumi
 * program once under the applier's mocks, loaded as Pulumi's Node.js runtime loads it (the unit
 * tests' harness, test/unit/infra/harness.ts), and writes every RegisterResource request (type,
 * name, options, dependencies, inputs with secrets unwrapped), the invokes and the stack outputs.
 * A process of its own per capture: an ES module program runs once per process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as pulumi from '@pulumi/pulumi';
import { importProgram, onRegistered } from '../../unit/infra/harness.ts';
import { plain } from '../../unit/infra/registrations.ts';
import { PROJECT } from '../../unit/infra/stack-files.ts';
import { captureMocks } from './mocks.ts';
import type { Capture, CapturedInvoke, CapturedResource, Json, JsonObject } from './types.ts';

export interface CaptureRequest {
  stack: string;
  /** `gpt-proxy:key` → value, as the CLI hands config to the program (strings). */
  config: Record<string, string>;
  /** Config keys (full names) that are secrets. */
  secretKeys: string[];
  seed: string;
}

const [requestFile, resultFile] = process.argv.slice(2);
if (!requestFile || !resultFile) throw new Error('usage: capture-child.ts REQUEST.json RESULT.json');
const request = JSON.parse(readFileSync(requestFile, 'utf8')) as CaptureRequest;

const resources: CapturedResource[] = [];
const invokes: CapturedInvoke[] = [];
await pulumi.runtime.setMocks(captureMocks(request.seed, invokes), PROJECT, request.stack, false);
pulumi.runtime.setAllConfig(request.config, request.secretKeys);
onRegistered((req, urn) => {
  resources.push({
    urn,
    type: req.getType(),
    name: req.getName(),
    custom: req.getCustom(),
    parent: req.getParent(),
    // The reference is URN::ID; the ID is an output reference, the URN names the provider.
    provider: req.getProvider().split('::').slice(0, -1).join('::'),
    dependencies: req.getDependenciesList(),
    deleteBeforeReplace: req.getDeletebeforereplace(),
    ignoreChanges: req.getIgnorechangesList(),
    retainOnDelete: req.getRetainondelete(),
    inputs: plain(req.getObject()?.toJavaScript() ?? {}) as JsonObject,
  });
});

const exported = await importProgram();
const outputs: JsonObject = {};
for (const [name, value] of Object.entries(exported)) {
  outputs[name] = pulumi.Output.isInstance(value)
    ? await new Promise<Json>((done) => value.apply((v) => done(v as Json)))
    : (value as Json);
}
await pulumi.runtime.disconnect();
const capture: Capture = { stack: request.stack, resources, invokes, outputs };
writeFileSync(resultFile, JSON.stringify(capture), { mode: 0o600 });
