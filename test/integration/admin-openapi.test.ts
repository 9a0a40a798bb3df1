// The OpenAPI description in the repo against the router: the same routes, the same query
// parameters and body fields (and required ones) as the routes' own zod schemas, the same
// success status, and the auth errors on every operation.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ADMIN_PREFIX, ADMIN_ROUTES, adminRoutes, routeList } from '../../app/src/admin/index.ts';
import { MAX_INT } from '../../app/src/admin/validation.ts';

interface Schema {
  $ref?: string;
  properties?: Record<string, unknown>;
  required?: string[];
  additionalProperties?: boolean;
}
interface Parameter {
  $ref?: string;
  name?: string;
  in?: string;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
  responses: Record<string, unknown>;
}
interface Spec {
  openapi: string;
  paths: Record<string, Record<string, Operation> & { parameters?: Parameter[] }>;
  components: { schemas: Record<string, Schema>; parameters: Record<string, Parameter> };
}

const spec = JSON.parse(
  readFileSync(new URL('../../app/src/admin/openapi.json', import.meta.url), 'utf8'),
) as Spec;

const toKoa = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');
const resolve = <T>(ref: string | undefined, table: Record<string, T>): T => {
  const found = table[(ref ?? '').split('/').at(-1) ?? ''];
  assert.ok(found, `unresolved $ref ${ref}`);
  return found;
};

function operations() {
  const ops: Array<{ method: string; path: string; op: Operation; pathParams: Parameter[] }> = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters') continue;
      ops.push({
        method: method.toUpperCase(),
        path: toKoa(path),
        op: op as Operation,
        pathParams: item.parameters ?? [],
      });
    }
  }
  return ops;
}

/** Input-side JSON Schema of a zod object: the field names and which ones a client must send. */
function zodFields(schema: z.ZodObject) {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Schema;
  return { names: Object.keys(json.properties ?? {}).sort(), required: [...(json.required ?? [])].sort() };
}

describe('admin OpenAPI description', () => {
  const router = adminRoutes({
    db: undefined as never,
    authenticator: { invalidate() {} },
    box: undefined as never,
    logger: undefined as never,
    authenticate: async () => {},
  });

  it('is OpenAPI 3.1 and describes exactly the routes the router serves', () => {
    assert.match(spec.openapi, /^3\.1\./);
    const served = routeList(router)
      .map((r) => `${r.method} ${r.path}`)
      .sort();
    const described = operations()
      .map((o) => `${o.method} ${o.path}`)
      .sort();
    assert.deepEqual(described, served);
  });

  it('matches each route: parameters, body fields, required fields, success status, auth errors', () => {
    const ops = operations();
    for (const route of ADMIN_ROUTES) {
      const where = `${route.method} ${route.path}`;
      const found = ops.find((o) => o.method === route.method && o.path === `${ADMIN_PREFIX}${route.path}`);
      assert.ok(found, `${where} is not described`);
      const params = [...found.pathParams, ...(found.op.parameters ?? [])].map((p) =>
        p.$ref ? resolve(p.$ref, spec.components.parameters) : p,
      );
      const query = params
        .filter((p) => p.in === 'query')
        .map((p) => p.name as string)
        .sort();
      assert.deepEqual(query, route.query ? zodFields(route.query).names : [], `${where}: query parameters`);
      const pathNames = params.filter((p) => p.in === 'path').map((p) => p.name);
      assert.deepEqual(pathNames, route.path.includes(':id') ? ['id'] : [], `${where}: path parameters`);

      const bodyRef = found.op.requestBody?.content['application/json'].schema;
      if (route.body) {
        assert.ok(bodyRef, `${where}: no request body described`);
        const body = bodyRef.$ref ? resolve(bodyRef.$ref, spec.components.schemas) : bodyRef;
        const zod = zodFields(route.body);
        assert.deepEqual(Object.keys(body.properties ?? {}).sort(), zod.names, `${where}: body fields`);
        assert.deepEqual([...(body.required ?? [])].sort(), zod.required, `${where}: required body fields`);
        assert.equal(body.additionalProperties, false, `${where}: unknown fields are refused`);
      } else {
        assert.equal(bodyRef, undefined, `${where}: describes a body the route does not read`);
      }

      const statuses = Object.keys(found.op.responses);
      assert.ok(statuses.includes(String(route.status ?? 200)), `${where}: success status`);
      for (const status of ['400', '401', '403']) assert.ok(statuses.includes(status), `${where}: ${status}`);
      if (route.path.includes(':id')) assert.ok(statuses.includes('404'), `${where}: 404`);
    }
  });

  it('states the upper bound of every bounded integer: the server refuses past MAX_INT (or a page size)', () => {
    const integers: Array<{ at: string; minimum?: number; maximum?: number }> = [];
    const walk = (node: unknown, at: string) => {
      if (node === null || typeof node !== 'object') return;
      const n = node as { type?: unknown; minimum?: number; maximum?: number };
      const types = Array.isArray(n.type) ? n.type : [n.type];
      if (types.includes('integer')) integers.push({ at, minimum: n.minimum, maximum: n.maximum });
      for (const [k, v] of Object.entries(node)) walk(v, `${at}/${k}`);
    };
    walk(spec, '#');
    const bounded = integers.filter((i) => i.minimum !== undefined);
    assert.ok(bounded.length >= 10, 'ids, cursors and limits are described as bounded integers');
    for (const i of bounded) {
      assert.ok(i.maximum !== undefined, `${i.at}: a maximum`);
      assert.ok(i.maximum <= MAX_INT, `${i.at}: at most ${MAX_INT}`);
    }
  });

  it('has every $ref resolvable', () => {
    const text = JSON.stringify(spec);
    for (const [, kind, name] of text.matchAll(/"#\/components\/(\w+)\/(\w+)"/g)) {
      const table = (spec.components as unknown as Record<string, Record<string, unknown>>)[kind as string];
      assert.ok(table?.[name as string], `#/components/${kind}/${name}`);
    }
  });
});
