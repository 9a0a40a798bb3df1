// Shared set-up of the admin API tests: a real stack (Postgres, Redis, fake upstream), the app in
// process, an admin key, and a small JSON client. Not a test file itself (no `.test.ts`).
import assert from 'node:assert/strict';
import { type InProcessApp, startAppInProcess } from '../helpers/app.ts';
import { type StackOptions, startStack, type TestStack } from '../helpers/stack.ts';

export const UPSTREAM_KEY = 'sk-upstream-admin-fixture-000000000001';

export interface ErrorShape {
  error?: { message: string; type: string; param: string | null; code: string };
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON, typed as the test expects it (null when the body is not JSON). */
  body: T & ErrorShape;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

export interface User {
  id: number;
  username: string;
  email: string;
  is_admin: boolean;
  disabled: boolean;
  active_keys: number;
}

export interface ApiKeyItem {
  id: number;
  name: string;
  prefix: string;
  user_id: number;
  username: string;
  status: 'active' | 'revoked';
  rpm: number | null;
  tpm: number | null;
  models: string[] | null;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  key?: string;
}

export interface UpstreamKeyItem {
  id: number;
  provider: 'openai' | 'azure';
  fingerprint_suffix: string;
  source: 'env' | 'admin';
  endpoint: string | null;
  deployments: Array<{ deployment: string; models: string[] }> | null;
  status: string;
  disabled_by: 'admin' | 'upstream' | null;
  failure_count: number;
  last_error: string | null;
}

export interface CallOptions {
  key?: string | null;
  body?: unknown;
  /** A raw body, sent as is (with `contentType`). */
  raw?: string;
  contentType?: string;
  query?: Record<string, string | number>;
  base?: string;
}

export interface AdminFixture {
  stack: TestStack;
  app: InProcessApp;
  admin: { key: string; id: number; userId: number };
  /** Calls `/admin/v1{path}` with the admin key unless `key` says otherwise (null: no key). */
  call<T = unknown>(method: string, path: string, options?: CallOptions): Promise<Answer<T>>;
  /** One chat completion through the proxy with `key`. */
  chat(key: string, model?: string, base?: string): Promise<Answer>;
  close(): Promise<void>;
}

export async function request<T = unknown>(url: string, init: RequestInit): Promise<Answer<T>> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, text, body: body as T & ErrorShape };
}

export async function startAdminFixture(options: StackOptions = {}): Promise<AdminFixture> {
  const stack = await startStack({ upstreamKeys: [UPSTREAM_KEY], ...options });
  let app: InProcessApp | undefined;
  try {
    app = await startAppInProcess(stack.env);
    const admin = await stack.issueKey({ admin: true, username: 'root-admin' });
    const base = app.url;
    return {
      stack,
      app,
      admin,
      call<T>(method: string, path: string, o: CallOptions = {}) {
        const url = new URL(`/admin/v1${path}`, o.base ?? base);
        for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, String(v));
        const headers: Record<string, string> = {};
        const key = o.key === undefined ? admin.key : o.key;
        if (key !== null) headers.authorization = `Bearer ${key}`;
        let payload: string | undefined;
        if (o.raw !== undefined) payload = o.raw;
        else if (o.body !== undefined) payload = JSON.stringify(o.body);
        if (payload !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
        return request<T>(url.href, { method, headers, body: payload });
      },
      chat(key, model = 'gpt-4o-mini', chatBase = base) {
        return request(`${chatBase}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
        });
      },
      async close() {
        await app?.stop();
        await stack.destroy();
      },
    };
  } catch (err) {
    await app?.stop().catch(() => {});
    await stack.destroy();
    throw err;
  }
}

/** Asserts an OpenAI-shaped error with this status, code and (when given) param. */
export function assertError(answer: Answer, status: number, code: string, param?: string | null): void {
  assert.equal(answer.status, status, `expected ${status} ${code}, got ${answer.status}: ${answer.text}`);
  const error = answer.body?.error;
  assert.equal(error?.code, code, answer.text);
  assert.ok(error && error.message.length > 0, answer.text);
  if (param !== undefined) assert.equal(error.param, param, answer.text);
}
