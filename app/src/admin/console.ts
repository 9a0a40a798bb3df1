import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Middleware, Next } from 'koa';

/** app/console in the source tree; dist/app/console once built (scripts/copy-assets.ts copies it). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));
export const CONSOLE_PREFIX = '/admin/';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The console is hand-written static files that talk to /admin/v1 on the same origin, so the
 * policy allows nothing but this origin's scripts, styles, images and fetches: no inline script
 * or style, no framing, no forms posting anywhere.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Reads every servable file once at start: only these names are ever served, so no path tricks. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const type = TYPES[extname(entry.name)];
    if (!entry.isFile() || !type) continue;
    const path = join(entry.parentPath, entry.name);
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(relative(dir, path).split(sep).join('/'), { body, type, etag });
  }
  return assets;
}

/**
 * Serves the web console under /admin/: index.html is never cached (it names the scripts);
 * the other files are revalidated by ETag on each load. Anything else under /admin/ falls
 * through to the next middleware (the admin API or the unknown-URL answer).
 */
export function adminConsole(options: { dir?: string } = {}): Middleware {
  const assets = loadAssets(options.dir ?? CONSOLE_DIR);
  return async function serveConsole(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === '/admin') {
      ctx.status = 301;
      ctx.redirect(CONSOLE_PREFIX);
      return;
    }
    if (!ctx.path.startsWith(CONSOLE_PREFIX)) return next();
    const name = ctx.path.slice(CONSOLE_PREFIX.length) || 'index.html';
    const asset = assets.get(name);
    if (!asset) return next();
    ctx.set({
      'Content-Security-Policy': CONSOLE_CSP,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cache-Control': name === 'index.html' ? 'no-store' : 'no-cache',
      ETag: asset.etag,
    });
    ctx.status = 200;
    ctx.type = asset.type;
    if (name !== 'index.html' && ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = asset.body;
  };
}
