/**
 * @module Who is calling. API clients send `Authorization: Bearer <token>`; the web UI holds a session cookie and
 * must echo its CSRF token on every change. Browser requests that carry a cookie must come from our own origin
 * (checked on WebSocket and SSE too, which CORS does not protect).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UserError } from '../protocol/errors.js';
import type { Principal } from '../core/principal.js';
import type { AuthStore, TokenScope } from '../store/auth.js';

export const SESSION_COOKIE = 'cvm_session';
export const SESSION_DAYS = 7;

export interface Caller {
  principal: Principal;
  tokenId: string;
  scope: TokenScope;
  workspaceId: string | null;
  via: 'bearer' | 'cookie';
}

export interface RequestHeaders {
  authorization?: string;
  cookie?: string;
  origin?: string;
  host?: string;
  csrf?: string;
}

const unauthorized = () => new UserError('unauthorized', 'Missing, invalid, expired or revoked credentials.', 'Log in with `claude-vm login <url> --token <token>`.');

/** The CSRF token that goes with a session: derived, so nothing more is stored. */
export function csrfFor(sessionSecret: string): string {
  return createHash('sha256').update(`csrf:${sessionSecret}`).digest('hex').slice(0, 40);
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/**
 * Resolves the caller or throws `unauthorized`/`forbidden`. `expect` is the token scope the route needs:
 * API routes take api tokens and sessions; the tunnel takes only a workspace's tunnel token.
 */
export async function authenticate(
  auth: AuthStore,
  h: RequestHeaders,
  opts: { method: string; expect: 'api' | 'tunnel'; upgrade?: boolean },
): Promise<Caller> {
  const bearer = /^Bearer\s+(\S+)$/i.exec(h.authorization ?? '')?.[1];
  const cookie = opts.expect === 'api' ? cookieValue(h.cookie, SESSION_COOKIE) : undefined;
  const secret = bearer ?? cookie;
  if (!secret) throw unauthorized();
  const found = await auth.verify(secret);
  if (!found) throw unauthorized();
  const { token, user } = found;
  const via = bearer ? 'bearer' : 'cookie';
  const wanted: TokenScope[] = opts.expect === 'tunnel' ? ['tunnel'] : via === 'bearer' ? ['api', 'read'] : ['session'];
  if (!wanted.includes(token.scope)) throw unauthorized();
  if (token.scope === 'read' && !['GET', 'HEAD'].includes(opts.method)) throw new UserError('forbidden', 'This token is read-only.');
  if (via === 'cookie') {
    // A cookie rides along on any request the browser makes, so the request must prove it came from our page.
    if (h.origin !== undefined || opts.upgrade) {
      const ok = !!h.origin && !!h.host && sameHost(h.origin, h.host);
      if (!ok) throw new UserError('forbidden', 'Cross-origin request refused.');
    }
    if (!['GET', 'HEAD'].includes(opts.method) && !opts.upgrade && !safeEqual(h.csrf ?? '', csrfFor(secret))) {
      throw new UserError('forbidden', 'Missing or wrong CSRF token.', 'Send the X-CSRF-Token header the session gave you.');
    }
  }
  void auth.touch(token.id).catch(() => undefined);
  return { principal: { userId: user.id, name: user.name, isAdmin: user.isAdmin }, tokenId: token.id, scope: token.scope, workspaceId: token.workspaceId, via };
}

function sameHost(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
