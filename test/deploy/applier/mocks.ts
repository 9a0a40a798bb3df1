/**
 * The mocks the capture step runs the program against. A mocked resource's state is its inputs
 * plus, for each output that is not an input, an output reference (refs.ts) the applier fills in
 * later: the per-type list below is the providers' schema knowledge the applier needs, nothing
 * about which container is which. @pulumi/random has no effect outside the program, so its values
 * are produced here, for real but reproducibly from a seed, the way Pulumi's state would keep them
 * from one `pulumi up` to the next.
 */
import { createHmac } from 'node:crypto';
import type * as pulumi from '@pulumi/pulumi';
import { ApplierRefusal } from './inputs.ts';
import { outputRef } from './refs.ts';
import type { CapturedInvoke, JsonObject } from './types.ts';

/** Outputs each type computes (not copied from its inputs). */
const COMPUTED: Record<string, readonly string[]> = {
  'docker:index/remoteImage:RemoteImage': ['imageId', 'repoDigest'],
  'docker:index/image:Image': ['repoDigest'],
  'command:local:Command': ['stdout', 'stderr'],
};
/** Types whose `name` Pulumi generates when the program gives none (autonaming). */
const AUTONAMED = new Set([
  'docker:index/container:Container',
  'docker:index/network:Network',
  'docker:index/volume:Volume',
]);

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const SPECIAL = '!@#$%&*()-_=+[]{}<>:?';

/** `length` pseudo-random bytes from `seed` and `name`: the same every run with the same seed. */
function seededBytes(seed: string, name: string, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++) {
    blocks.push(createHmac('sha256', seed).update(`${name}\0${i}`).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** What a @pulumi/random resource outputs, from its inputs and the seed (also for the tests' use). */
export function randomOutputs(type: string, name: string, inputs: JsonObject, seed: string): JsonObject {
  const length = inputs.length;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 1) {
    throw new ApplierRefusal(`applier: ${type} "${name}": input \`length\` must be a positive integer`);
  }
  if (type === 'random:index/randomBytes:RandomBytes') {
    const bytes = seededBytes(seed, name, length);
    return { hex: bytes.toString('hex'), base64: bytes.toString('base64') };
  }
  for (const key of ['minLower', 'minUpper', 'minNumeric', 'minSpecial']) {
    if (typeof inputs[key] === 'number' && inputs[key] !== 0) {
      throw new ApplierRefusal(`applier: ${type} "${name}": input \`${key}\` is not translated`);
    }
  }
  const special = typeof inputs.overrideSpecial === 'string' ? inputs.overrideSpecial : SPECIAL;
  const alphabet = [
    inputs.lower === false ? '' : LOWER,
    inputs.upper === false ? '' : UPPER,
    inputs.numeric === false ? '' : DIGITS,
    inputs.special === false ? '' : special,
  ].join('');
  const bytes = seededBytes(seed, name, length);
  return { result: [...bytes].map((b) => alphabet[b % alphabet.length]).join('') };
}

/** What the mocked provider answers for a new resource. */
function stateOf(type: string, name: string, inputs: JsonObject, seed: string): JsonObject {
  if (type.startsWith('random:')) return { ...inputs, ...randomOutputs(type, name, inputs, seed) };
  const state: JsonObject = { ...inputs };
  for (const prop of COMPUTED[type] ?? []) state[prop] = outputRef(type, name, prop);
  if (AUTONAMED.has(type) && typeof inputs.name !== 'string') state.name = outputRef(type, name, 'name');
  return state;
}

/** Mocks recording invokes into `invokes`; every resource's ID is an output reference. */
export function captureMocks(seed: string, invokes: CapturedInvoke[]): pulumi.runtime.Mocks {
  return {
    newResource(args) {
      const inputs = args.inputs as JsonObject;
      return {
        id: outputRef(args.type, args.name, 'id'),
        state: stateOf(args.type, args.name, inputs, seed),
      };
    },
    call(args) {
      invokes.push({ token: args.token, inputs: args.inputs as JsonObject });
      // The applier runs the invoke for real after applying; the mocked run sees no output.
      return args.token === 'command:local:run' ? { stdout: '', stderr: '' } : {};
    },
  };
}
