/**
 * @module The web UI: static files from dist/ui (built by scripts/build-ui.mjs) with the app's index for every
 * other page path, and `/login?code=…`, where a one-time link from `claude-vm web` becomes a session cookie.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { ControlPlane } from './control-plane.js';
import { SESSION_COOKIE, SESSION_DAYS } from './auth.js';

const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.map': 'application/json',
};

export function uiRoutes(app: Hono, cp: ControlPlane, dir = UI_DIR): void {
  app.get('/login', async (c) => {
    const code = c.req.query('code') ?? '';
    const found = code ? await cp.auth.verify(code) : undefined;
    if (!found || found.token.scope !== 'login') {
      await cp.auth.audit({ userId: null, action: 'auth.login.failed', target: null, detail: { via: 'link' } });
      return c.html(page('This login link is not valid (it works once, for 10 minutes). Run <code>claude-vm web</code> for a new one.'), 401);
    }
    // One use: the link is gone before the session exists.
    await cp.auth.revokeToken(found.user.id, found.token.id);
    const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000).toISOString();
    const { secret } = await cp.auth.createToken({ userId: found.user.id, name: 'web session', scope: 'session', expiresAt });
    await cp.auth.audit({ userId: found.user.id, action: 'auth.login', target: null, detail: { via: 'link' } });
    const secure = new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
    c.header('Set-Cookie', `${SESSION_COOKIE}=${secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_DAYS * 86400}${secure ? '; Secure' : ''}`);
    c.header('Referrer-Policy', 'no-referrer');
    return c.redirect('/', 303);
  });

  app.get('*', (c) => {
    const path = c.req.path;
    if (path.startsWith('/api/')) return c.notFound();
    const index = join(dir, 'index.html');
    if (!existsSync(index)) return c.html(page('The web UI is not built. Run <code>npm run build</code>.'), 503);
    const file = normalize(join(dir, path));
    const serve = file.startsWith(dir + '/') && existsSync(file) && statSync(file).isFile() ? file : index;
    const type = TYPES[extname(serve)] ?? 'application/octet-stream';
    c.header('Content-Type', type);
    c.header('X-Content-Type-Options', 'nosniff');
    // The app shell is always fresh; its scripts and styles may be cached briefly.
    c.header('Cache-Control', serve === index ? 'no-cache' : 'public, max-age=300');
    if (serve === index) c.header('Content-Security-Policy', "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; worker-src 'self'; frame-ancestors 'none'");
    return c.body(readFileSync(serve));
  });
}

function page(message: string): string {
  return `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>claude-vm</title><body style="font-family:system-ui;padding:2rem"><h1>claude-vm</h1><p>${message}</p></body>`;
}
