// The admin API client: same origin, the admin key as a Bearer token, errors as ApiFailure.

const STORAGE_KEY = 'gpt-proxy-admin-key';

/** A non-2xx answer, with the server's OpenAI-style error fields. */
export class ApiFailure extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message ?? `The server answered ${status}.`);
    this.status = status;
    this.code = error.code ?? null;
    this.param = error.param ?? null;
  }
}

/**
 * A call of a session that has ended rejects with this (an AbortError, which `showError` passes
 * over): whatever it would have shown belongs to the admin who signed out.
 */
const signedOut = () => new DOMException('Signed out.', 'AbortError');
let ended = new AbortController();

/** The admin key lives in sessionStorage: gone when the tab closes, never in a cookie or URL. */
export const session = {
  get key() {
    return sessionStorage.getItem(STORAGE_KEY);
  },
  set(key) {
    sessionStorage.setItem(STORAGE_KEY, key);
  },
  /** Forgets the key and ends the calls under way, so none of their answers lands in the page. */
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
    ended.abort(signedOut());
    ended = new AbortController();
  },
};

let onAuthFailure = () => {};

/** Called when the server refuses the key (401/403), so the console can ask for it again. */
export function whenKeyRefused(handler) {
  onAuthFailure = handler;
}

/**
 * Calls /admin/v1{path} with `key`, else the session's. `query` values that are empty are left
 * out; `body` is sent as JSON. Resolves with the parsed answer, rejects with ApiFailure, or with
 * an AbortError once the session has ended (also when the call ended it by a refused key: the
 * handler has signed out and said why).
 */
export async function api(method, path, { query, body, key } = {}) {
  const { signal } = ended;
  const bearer = key ?? session.key;
  if (!bearer) throw signedOut(); // e.g. the next step of a view's load, after a sign-out
  const url = new URL(`/admin/v1${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  const headers = { authorization: `Bearer ${bearer}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    signal,
  });
  const json = await response.json().catch(() => null);
  signal.throwIfAborted();
  if (!response.ok) {
    const failure = new ApiFailure(response.status, json);
    if ((response.status === 401 || response.status === 403) && key === undefined) {
      onAuthFailure(failure);
      throw signedOut();
    }
    throw failure;
  }
  return json;
}

/** Every page of a list, up to `maxPages` pages of 100 (for pickers such as the user list). */
export async function listAll(path, query = {}, maxPages = 20) {
  const all = [];
  let after;
  for (let i = 0; i < maxPages; i++) {
    const page = await api('GET', path, { query: { ...query, limit: 100, after } });
    all.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
    after = page.data[page.data.length - 1].id;
  }
  return all;
}
