// The web console at /admin/: how its files are served (types, CSP, caching, nothing outside the
// console directory, no external URLs), then Debian's chromium driven by playwright-core through
// a real sign-in, key issue, listing, revocation — and the revoked key refused by the proxy.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page, type Request } from 'playwright-core';
import { CONSOLE_CSP, CONSOLE_DIR } from '../../app/src/admin/index.ts';
import { registerTempDir, type ServerProcess, spawnServer, waitFor } from '../helpers/processes.ts';
import { type AdminFixture, assertError, startAdminFixture } from './admin-fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const OUTPUT_DIR = new URL('../../test-output/', import.meta.url);

/** A GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: 'GET', timeout: 10_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('admin console: static files', () => {
  let f: AdminFixture;
  before(async () => {
    f = await startAdminFixture();
  });
  after(async () => {
    await f?.close();
  });

  it('serves index.html uncached under a strict CSP, and redirects /admin to /admin/', async () => {
    const res = await fetch(`${f.app.url}/admin/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.match(CONSOLE_CSP, /default-src 'none'/);
    assert.match(CONSOLE_CSP, /script-src 'self'(;|$)/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.match(await res.text(), /<script type="module" src="app.js"><\/script>/);
    const bare = await fetch(`${f.app.url}/admin`, { redirect: 'manual' });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/admin/');
  });

  it('serves scripts, styles and images with their types, revalidated by ETag', async () => {
    for (const [path, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['views/keys.js', 'text/javascript; charset=utf-8'],
      ['console.css', 'text/css; charset=utf-8'],
      ['icon.svg', 'image/svg+xml'],
    ]) {
      const res = await fetch(`${f.app.url}/admin/${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.equal(res.headers.get('cache-control'), 'no-cache', path);
      const etag = res.headers.get('etag') ?? '';
      assert.match(etag, /^"[\w-]{22}"$/);
      // As a browser revalidates (fetch alone would add `no-cache`, which rightly forces a 200).
      const again = await fetch(`${f.app.url}/admin/${path}`, {
        headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' },
      });
      assert.equal(again.status, 304, path);
    }
  });

  it('serves nothing else: unknown names, traversal and other methods fall through to unknown_url', async () => {
    const missing = await fetch(`${f.app.url}/admin/secret.env`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'unknown_url');
    for (const path of [
      '/admin/../package.json',
      '/admin/%2e%2e/package.json',
      '/admin/views/../../package.json',
    ]) {
      assert.equal(await rawGet(f.app.url, path), 404, path);
    }
    const post = await fetch(`${f.app.url}/admin/index.html`, { method: 'POST' });
    assert.equal(post.status, 404);
  });

  it('links nothing outside the appliance: no CDN, no external script, style or font', () => {
    const files = readdirSync(CONSOLE_DIR, { recursive: true, encoding: 'utf8' }).filter((n) =>
      /\.(html|js|css)$/.test(n),
    );
    assert.ok(files.length >= 8);
    for (const name of files) {
      const text = readFileSync(join(CONSOLE_DIR, name), 'utf8');
      assert.doesNotMatch(text, /(src|href)\s*=\s*["'](https?:)?\/\//i, name);
      assert.doesNotMatch(text, /(import|from)\s*\(?\s*["']https?:/i, name);
      assert.doesNotMatch(text, /url\(\s*["']?(https?:)?\/\//i, name);
      assert.doesNotMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, name);
    }
  });
});

const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install -y chromium): the browser test needs Debian's chromium`;

describe('admin console in headless chromium', { skip }, () => {
  let f: AdminFixture;
  let proc: ServerProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];
  const apiCalls = new Set<Request>(); // admin API calls of the page still under way

  before(async () => {
    f = await startAdminFixture();
    const profile = await mkdtemp(join(tmpdir(), 'gpt-proxy-chromium-'));
    registerTempDir(profile);
    proc = await spawnServer(
      CHROMIUM,
      [
        ...CHROMIUM_ARGS,
        `--user-data-dir=${profile}`,
        '--remote-debugging-address=127.0.0.1',
        '--remote-debugging-port=0',
        'about:blank',
      ],
      { name: 'chromium' },
    );
    const running = proc;
    const endpoint = await waitFor(
      () => /DevTools listening on (ws:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(running.output())?.[1],
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'chromium to print its DevTools endpoint',
      },
    );
    browser = await chromium.connectOverCDP(endpoint, { timeout: 30_000 });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (msg) => {
      // The deliberate wrong-key sign-in is logged by Chrome as a failed (401) load; nothing else may be.
      if (msg.type() === 'error' && !/status of 401/.test(msg.text()))
        problems.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    page.on('request', (req) => void (req.url().includes('/admin/v1/') && apiCalls.add(req)));
    page.on('requestfinished', (req) => apiCalls.delete(req));
    page.on('requestfailed', (req) => apiCalls.delete(req));
    mkdirSync(OUTPUT_DIR, { recursive: true });
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await proc?.stop('SIGTERM', 10_000);
    await f?.close();
  });

  it('signs in, issues a key, sees it listed, revokes it; the proxy then refuses the key', async () => {
    await page.goto(`${f.app.url}/admin/`);
    await page.waitForSelector('#login-key');
    assert.equal(await page.isVisible('#tabs'), false, 'the tab bar shows before sign-in');
    await page.fill('#login-key', 'sk-gp-not-a-real-key-but-shaped-like-one-000000');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-form .error:has-text("Incorrect API key")');

    await signIn(page, f.admin.key);
    await page.waitForSelector('#users-view:not([hidden]) tbody tr[data-username="root-admin"]');

    await page.fill('#user-form input[name=username]', 'browser-user');
    await page.fill('#user-form input[name=email]', 'browser-user@example.com');
    await page.click('#user-form button[type=submit]');
    await page.waitForSelector('#users-table tbody tr[data-username="browser-user"]');

    await page.click('nav a[data-view=keys]');
    await page.waitForSelector('#key-form select[name=user_id] option:has-text("browser-user")', {
      state: 'attached',
    });
    await page.selectOption('#key-form select[name=user_id]', {
      label: (await optionLabel(page, 'browser-user')) ?? '',
    });
    await page.fill('#key-form input[name=name]', 'browser-key');
    await page.fill('#key-form input[name=rpm]', '600');
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector('#new-key:not([hidden])');
    const key = await page.inputValue('#new-key-value');
    assert.match(key, /^sk-gp-[A-Za-z0-9_-]{43}$/);

    const listed = page.locator('#keys-table tbody tr', { hasText: 'browser-key' });
    await listed.waitFor();
    const rowText = (await listed.textContent()) ?? '';
    assert.match(rowText, /browser-user[\s\S]*active[\s\S]*600/);
    assert.ok(rowText.includes(key.slice(0, 14)), 'the row shows the key prefix');
    assert.ok(!rowText.includes(key.slice(14)), 'the row shows more than the prefix');
    assert.equal((await f.chat(key)).status, 200, 'the issued key works');

    await page.click('#new-key-done');
    assert.equal(await page.inputValue('#new-key-value'), '', 'the key is cleared from the page');
    page.once('dialog', (dialog) => void dialog.accept());
    await listed.locator('button', { hasText: 'Revoke' }).click();
    const revokedAt = Date.now();
    await page
      .locator('#keys-table tbody tr', { hasText: 'browser-key' })
      .locator('.badge.revoked')
      .waitFor();

    await waitFor(async () => (await f.chat(key)).status === 401, {
      timeoutMs: 5_000,
      intervalMs: 100,
      what: 'the proxy to refuse the revoked key',
    });
    assert.ok(Date.now() - revokedAt < 5_000);
    assertError(await f.chat(key), 401, 'invalid_api_key');
    await page.screenshot({ path: new URL('admin-console.png', OUTPUT_DIR).pathname, fullPage: true });
  });

  it('shows the upstream keys, the usage chart and the request log', async () => {
    await page.click('nav a[data-view=upstream]');
    const env = page.locator('#upstream-table tbody tr', { hasText: 'environment' });
    await env.waitFor();
    assert.match((await env.textContent()) ?? '', /openai[\s\S]*…[0-9a-f]{8}[\s\S]*active/);
    // Endpoint and deployments are Azure's: for OpenAI the API refuses them, so they are not offered.
    const endpoint = '#upstream-form input[name=endpoint]';
    assert.equal(await page.inputValue('#upstream-form select[name=provider]'), 'openai');
    assert.equal(await page.isVisible(endpoint), false, 'openai offers an endpoint');
    assert.equal(await page.isVisible('#upstream-form input[name=deployments]'), false);
    await page.selectOption('#upstream-form select[name=provider]', 'azure');
    assert.equal(await page.isVisible(endpoint), true, 'azure offers no endpoint');
    await page.selectOption('#upstream-form select[name=provider]', 'openai');
    assert.equal(await page.isVisible(endpoint), false);

    // The chat requests above are in usage_logs once the recorder flushes (about a second).
    await page.click('nav a[data-view=usage]');
    await waitFor(
      async () => {
        await page.click('#usage-form button[type=submit]');
        await page.waitForSelector('#usage-totals strong');
        const total = await page
          .locator('#usage-totals div', { hasText: 'Requests' })
          .locator('strong')
          .textContent();
        return Number((total ?? '').replace(/\D/g, '')) > 0;
      },
      { timeoutMs: 15_000, intervalMs: 500, what: 'usage to show the requests' },
    );
    assert.ok((await page.locator('#usage-chart rect.bar').count()) >= 30, 'one bar per day');
    const heights = await page
      .locator('#usage-chart rect.bar')
      .evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('height'))));
    assert.ok(
      heights.some((h) => h > 0),
      'a non-empty bar',
    );
    await page.screenshot({ path: new URL('admin-console-usage.png', OUTPUT_DIR).pathname, fullPage: true });

    await page.click('nav a[data-view=requests]');
    await page.locator('#requests-table tbody tr', { hasText: 'chat/completions' }).first().waitFor();

    await page.click('#logout');
    await page.waitForSelector('#login-view:not([hidden])');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the key is forgotten on sign-out');
    assert.deepEqual(problems, [], 'the console logged errors (a CSP violation shows up here)');
  });

  it('offers Disable for a cooling upstream key, next to Clear cooldown', async () => {
    const cooled = await f.stack.db.query<{ id: number }>(
      "UPDATE upstream_keys SET status = 'cooling', cooldown_until = now() + interval '1 hour' RETURNING id",
    );
    const id = cooled.rows[0]?.id;
    await signIn(page, f.admin.key);
    await page.click('nav a[data-view=upstream]');
    const listed = page.locator(`#upstream-table tbody tr[data-id="${id}"]`);
    await listed.locator('.badge.cooling').waitFor();
    assert.deepEqual(await listed.locator('button').allTextContents(), ['Clear cooldown', 'Disable']);

    await listed.locator('button', { hasText: 'Disable' }).click();
    await listed.locator('.badge.disabled').waitFor();
    const stored = await f.stack.db.query(
      "SELECT status, cooldown_until, next_probe_at = 'infinity' AS by_admin FROM upstream_keys WHERE id = $1",
      [id],
    );
    assert.deepEqual(stored.rows[0], { status: 'disabled', cooldown_until: null, by_admin: true });

    await listed.locator('button', { hasText: 'Enable' }).click();
    await listed.locator('.badge.active').waitFor();
    assert.equal((await f.chat(f.admin.key)).status, 200, 'the key is back in rotation');
    assert.deepEqual(problems, []);
  });
  it('loads the next page once for a double-clicked "Load more"', async () => {
    await f.stack.db.query(
      "INSERT INTO users (username, email) SELECT 'bulk' || g, 'bulk' || g || '@example.com' FROM generate_series(1, 60) g",
    );
    const total = (await f.stack.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users')).rows[0]?.n;
    assert.ok(total !== undefined && total > 50 && total <= 100, 'two pages of users');
    await page.click('nav a[data-view=users]');
    await page.waitForSelector('#users-view button.more:not([hidden])');
    await settled(page, apiCalls);
    assert.equal(await page.locator('#users-table tbody tr').count(), 50);

    await page.dblclick('#users-view button.more');
    await page.waitForSelector('#users-view button.more', { state: 'hidden' });
    await settled(page, apiCalls);
    const ids = await page
      .locator('#users-table tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    assert.equal(new Set(ids).size, ids.length, 'a page was appended twice');
    assert.equal(ids.length, total);
    assert.deepEqual(problems, []);
  });

  it('forgets the session on sign-out: the issued key and every table', async () => {
    const filled = {
      upstream: '#upstream-table tbody tr',
      usage: '#usage-totals strong',
      requests: '#requests-table tbody tr',
    };
    for (const [view, selector] of Object.entries(filled)) {
      await page.click(`nav a[data-view=${view}]`);
      await page.locator(selector).first().waitFor();
    }
    await page.click('nav a[data-view=keys]');
    await page.selectOption('#key-form select[name=user_id]', {
      label: (await optionLabel(page, 'browser-user')) ?? '',
    });
    await page.fill('#key-form input[name=name]', 'left-behind');
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector('#new-key:not([hidden])');
    await page.locator('#keys-table tbody tr', { hasText: 'left-behind' }).waitFor();
    await settled(page, apiCalls);
    const shown = await leftovers(page);
    assert.ok(shown.rows > 0 && shown.totals > 0 && shown.users > 0 && shown.newKey !== '', 'a full page');

    await page.click('#logout'); // without clicking Done
    await page.waitForSelector('#login-view:not([hidden])');
    assert.deepEqual(await leftovers(page), NOTHING_LEFT, 'the next admin at this tab would see it');

    await signIn(page, f.admin.key);
    await page.click('nav a[data-view=keys]');
    await page.locator('#keys-table tbody tr', { hasText: 'left-behind' }).waitFor();
    assert.equal(await page.isVisible('#new-key'), false);
    assert.equal(await page.inputValue('#new-key-value'), '');
    assert.deepEqual(problems, []);
  });

  it('forgets the session when the server refuses the key, and says why', async () => {
    const other = await f.stack.issueKey({ admin: true, username: 'second-admin' });
    await page.click('#logout');
    await signIn(page, other.key);
    await page.click('nav a[data-view=users]');
    await page.waitForSelector('#users-table tbody tr[data-username="root-admin"]');
    await settled(page, apiCalls);
    assert.equal((await f.call('DELETE', `/keys/${other.id}`)).status, 200);

    await page.click('nav a[data-view=keys]'); // its first call is refused: 401
    await page.waitForSelector('#login-form .error:has-text("Signed out")');
    // The refusal's own reason, not that of a later call the view would have made without a key.
    assert.equal(await page.textContent('#login-form .error'), 'Signed out: This API key has been revoked.');
    await settled(page, apiCalls);
    assert.deepEqual(await leftovers(page), NOTHING_LEFT);
    assert.equal(await page.textContent('#key-form .error'), '', 'the refusal also shown in the form');
    assert.deepEqual(problems, []);
  });
});

const NOTHING_LEFT = { rows: 0, totals: 0, chart: 0, users: 0, newKey: '', newKeyHidden: true };

/** What the page still holds of a session: table rows, usage, the user picker, an issued key. */
async function leftovers(page: Page) {
  return {
    rows: await page.locator('main tbody tr').count(),
    totals: await page.locator('#usage-totals > *').count(),
    chart: await page.locator('#usage-chart > *').count(),
    users: await page.locator('#key-form select[name=user_id] option').count(),
    newKey: await page.inputValue('#new-key-value'),
    newKeyHidden: (await page.getAttribute('#new-key', 'hidden')) !== null,
  };
}

/** Waits until no admin API call is under way and the page has handled the last answer. */
async function settled(page: Page, calls: Set<Request>): Promise<void> {
  await waitFor(() => calls.size === 0, { timeoutMs: 10_000, intervalMs: 20, what: 'the API calls to end' });
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
}

/** Signs in with `key` and waits for the tab bar (the tab shown is the one in the URL's hash). */
async function signIn(page: Page, key: string): Promise<void> {
  await page.fill('#login-key', key);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#tabs:not([hidden])');
}

/** The label of the first option mentioning `text` (labels carry the user id). */
async function optionLabel(page: Page, text: string): Promise<string | null> {
  return page.locator('#key-form select[name=user_id] option', { hasText: text }).first().textContent();
}
