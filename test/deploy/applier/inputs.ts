/**
 * Reading a resource's inputs strictly: every getter checks the type of what it reads, `only()`
 * refuses any key the caller does not translate, and each refusal names the resource and the
 * input's path (`networksAdvanced[1].ipv4Address`), never its value (it may be a secret).
 */
import type { Json, JsonObject } from './types.ts';

/** The applier met something it cannot translate faithfully: it stops before guessing. */
export class ApplierRefusal extends Error {
  override name = 'ApplierRefusal';
}

export interface ResourceRef {
  type: string;
  name: string;
}

export function refuse(r: ResourceRef, input: string, why: string): never {
  throw new ApplierRefusal(`applier: ${r.type} "${r.name}": input \`${input}\` ${why}`);
}

export class InputReader {
  readonly resource: ResourceRef;
  readonly values: JsonObject;
  readonly path: string;

  constructor(resource: ResourceRef, values: JsonObject, path = '') {
    this.resource = resource;
    this.values = values;
    this.path = path;
  }

  at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** Refuses every key that is set (not null) and not in `known`. */
  only(known: readonly string[]): this {
    for (const [key, value] of Object.entries(this.values)) {
      if (value !== null && !known.includes(key)) refuse(this.resource, this.at(key), 'is not translated');
    }
    return this;
  }

  has(key: string): boolean {
    const value = this.values[key];
    return value !== undefined && value !== null;
  }

  private typed<T>(key: string, check: (v: Json) => boolean, what: string): T | undefined {
    const value = this.values[key];
    if (value === undefined || value === null) return undefined;
    if (!check(value)) refuse(this.resource, this.at(key), `is not ${what}`);
    return value as T;
  }

  string(key: string): string | undefined {
    return this.typed<string>(key, (v) => typeof v === 'string', 'a string');
  }

  requireString(key: string): string {
    const value = this.string(key);
    if (value === undefined) refuse(this.resource, this.at(key), 'is required');
    return value;
  }

  number(key: string): number | undefined {
    return this.typed<number>(key, (v) => typeof v === 'number', 'a number');
  }

  boolean(key: string): boolean | undefined {
    return this.typed<boolean>(key, (v) => typeof v === 'boolean', 'a boolean');
  }

  strings(key: string): string[] | undefined {
    const isList = (v: Json) => Array.isArray(v) && v.every((item) => typeof item === 'string');
    return this.typed<string[]>(key, isList, 'a list of strings');
  }

  /** A map of strings (e.g. an environment). */
  record(key: string): Record<string, string> | undefined {
    const isMap = (v: Json) =>
      typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isString);
    return this.typed<Record<string, string>>(key, isMap, 'a map of strings');
  }

  object(key: string): InputReader | undefined {
    const value = this.typed<JsonObject>(key, isObject, 'an object');
    return value === undefined ? undefined : new InputReader(this.resource, value, this.at(key));
  }

  objects(key: string): InputReader[] {
    const isList = (v: Json) => Array.isArray(v) && v.every(isObject);
    const list = this.typed<JsonObject[]>(key, isList, 'a list of objects') ?? [];
    return list.map((item, i) => new InputReader(this.resource, item, `${this.at(key)}[${i}]`));
  }
}

function isString(v: Json): boolean {
  return typeof v === 'string';
}

function isObject(v: Json): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
