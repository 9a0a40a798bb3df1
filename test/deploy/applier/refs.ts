/**
 * Output references. Under mocks a resource's outputs do not exist yet, so the capture step gives
 * each one that is not simply an input (an image's ID, a command's stdout, a container's ID) a
 * placeholder string naming the resource and the property. Values derived by the program pass the
 * placeholder along unchanged (an image ID straight into a container's `image`, an ID into a
 * hook's `triggers`); the applier replaces it with the real value once that resource is applied,
 * exactly where Pulumi's engine would have waited for it.
 */
import type { Json, JsonObject } from './types.ts';

const OPEN = '\u27e6';
const CLOSE = '\u27e7';
const REF = /\u27e6([^|\u27e7]+)\|([^|\u27e7]+)\|([^|\u27e7]+)\u27e7/g;

/** The placeholder for output `prop` of resource `type` `name`. */
export function outputRef(type: string, name: string, prop: string): string {
  return `${OPEN}${type}|${name}|${prop}${CLOSE}`;
}

export function resourceKey(type: string, name: string): string {
  return `${type}|${name}`;
}

export type OutputLookup = (key: string, prop: string) => string | undefined;

/**
 * `value` with every placeholder replaced through `lookup`; throws, naming the input's path,
 * when one refers to something not applied yet (a dependency the program did not declare).
 */
export function resolveRefs(value: Json, lookup: OutputLookup, where: string, path = ''): Json {
  if (typeof value === 'string') {
    return value.replace(REF, (_whole, type: string, name: string, prop: string) => {
      const real = lookup(resourceKey(type, name), prop);
      if (real === undefined) {
        throw new Error(
          `applier: ${where}: input \`${path}\` needs ${prop} of ${type} "${name}", not applied`,
        );
      }
      return real;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => resolveRefs(item, lookup, where, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = resolveRefs(v, lookup, where, path === '' ? k : `${path}.${k}`);
    }
    return out;
  }
  return value;
}
