/** @module Accounts: health, login sessions for the web UI, users (admins), API tokens, and the audit log. */
import { UserError } from '../../protocol/errors.js';
import { SESSION_COOKIE, SESSION_DAYS, csrfFor, cookieValue } from '../auth.js';
import type { ControlPlane } from '../control-plane.js';
import { route, z, type Api } from './route.js';
import { VERSION } from '../../version.js';
import type { TokenRow, UserRow } from '../../store/auth.js';

const NAME = z.string().regex(/^[a-z][a-z0-9._-]{0,39}$/, 'use 1-40 lower-case letters, digits, dots, dashes or underscores, starting with a letter');

export function accountRoutes(app: Api, cp: ControlPlane): void {
  route(app, cp, { method: 'get', path: '/api/v1/health', summary: 'Liveness and version', tag: 'server', access: 'public' }, ({ c }) =>
    c.json({ ok: true, version: VERSION, instance: cp.instanceId }),
  );

  route(
    app, cp,
    { method: 'post', path: '/api/v1/auth/session', summary: 'Exchange an API token for a web session cookie', tag: 'auth', access: 'public', body: z.object({ token: z.string().min(1) }) },
    async ({ c }, { body }) => {
      const found = await cp.auth.verify(body.token);
      if (!found || found.token.scope !== 'api') {
        await cp.auth.audit({ userId: null, action: 'auth.login.failed', target: null, detail: {} });
        throw new UserError('unauthorized', 'That token is not valid.');
      }
      const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000).toISOString();
      const { secret } = await cp.auth.createToken({ userId: found.user.id, name: 'web session', scope: 'session', expiresAt });
      await cp.auth.audit({ userId: found.user.id, action: 'auth.login', target: null, detail: { via: 'web' } });
      const secure = new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
      c.header('Set-Cookie', `${SESSION_COOKIE}=${secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_DAYS * 86400}${secure ? '; Secure' : ''}`);
      return c.json({ user: publicUser(found.user), csrfToken: csrfFor(secret), expiresAt });
    },
  );

  route(app, cp, { method: 'post', path: '/api/v1/auth/login-links', summary: 'A one-time link that logs this user into the web UI (valid 10 minutes)', tag: 'auth' }, async ({ c, caller }) => {
    if (caller.scope !== 'api' && caller.scope !== 'session') throw new UserError('forbidden', 'A read-only token cannot make login links.');
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    const { secret } = await cp.auth.createToken({ userId: caller.principal.userId, name: 'login link', scope: 'login', expiresAt });
    const origin = cp.endpoints.publicUrl ?? new URL(c.req.url).origin;
    return c.json({ url: `${origin.replace(/\/$/, '')}/login?code=${encodeURIComponent(secret)}`, expiresAt }, 201);
  });

  route(app, cp, { method: 'delete', path: '/api/v1/auth/session', summary: 'Log out of this web session', tag: 'auth' }, async ({ c, caller }) => {
    if (caller.via === 'cookie') await cp.auth.revokeToken(caller.principal.userId, caller.tokenId);
    c.header('Set-Cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
    return c.json({ ok: true });
  });

  route(app, cp, { method: 'get', path: '/api/v1/me', summary: 'The calling user', tag: 'auth' }, async ({ c, caller }) => {
    const session = caller.via === 'cookie' ? cookieValue(c.req.header('cookie'), SESSION_COOKIE) : undefined;
    return c.json({ user: { id: caller.principal.userId, name: caller.principal.name, admin: caller.principal.isAdmin }, scope: caller.scope, ...(session ? { csrfToken: csrfFor(session) } : {}) });
  });

  route(app, cp, { method: 'get', path: '/api/v1/users', summary: 'List users', tag: 'users', access: 'admin' }, async ({ c }) => c.json((await cp.auth.listUsers()).map(publicUser)));

  route(
    app, cp,
    { method: 'post', path: '/api/v1/users', summary: 'Add a user; answers with their first API token, shown once', tag: 'users', access: 'admin', body: z.object({ name: NAME, admin: z.boolean().optional() }) },
    async ({ c, caller }, { body }) => {
      if (await cp.auth.getUser(body.name)) throw new UserError('already_exists', `A user named "${body.name}" already exists.`);
      const user = await cp.auth.insertUser(body.name, !!body.admin);
      const { token, secret } = await cp.auth.createToken({ userId: user.id, name: 'first token', scope: 'api' });
      await cp.auth.audit({ userId: caller.principal.userId, action: 'user.add', target: user.id, detail: { name: user.name, admin: user.isAdmin } });
      return c.json({ user: publicUser(user), token: publicToken(token), secret }, 201);
    },
  );

  route(
    app, cp,
    { method: 'delete', path: '/api/v1/users/{id}', summary: 'Delete a user; their tokens stop working at once', tag: 'users', access: 'admin', params: z.object({ id: z.string() }) },
    async ({ c, caller }, { params }) => {
      const user = await cp.auth.getUser(params.id);
      if (!user) throw new UserError('not_found', `No user "${params.id}".`);
      if (user.id === caller.principal.userId) throw new UserError('invalid_argument', 'You cannot delete yourself.');
      // Their workspaces would run on with nobody to stop them: they go first.
      const left = (await cp.store.listWorkspaces(user.id)).length;
      if (left) throw new UserError('wrong_state', `User ${user.name} still has ${left} workspace(s).`, 'Ask them to delete their workspaces with --purge first.');
      await cp.auth.deleteUser(user.id);
      await cp.auth.audit({ userId: caller.principal.userId, action: 'user.delete', target: user.id, detail: { name: user.name } });
      return c.json({ deleted: user.id });
    },
  );

  route(app, cp, { method: 'get', path: '/api/v1/tokens', summary: "List the caller's API tokens (never their secrets)", tag: 'tokens' }, async ({ c, caller }) =>
    c.json((await cp.auth.listTokens(caller.principal.userId)).map(publicToken)),
  );

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/tokens', summary: 'Create an API token; its secret is in this answer only', tag: 'tokens',
      body: z.object({ name: z.string().min(1).max(80), expiresInDays: z.number().positive().max(3650).optional(), readOnly: z.boolean().optional() }),
    },
    async ({ c, caller }, { body }) => {
      if (caller.scope !== 'api' && caller.scope !== 'session') throw new UserError('forbidden', 'A read-only token cannot create tokens.');
      const expiresAt = body.expiresInDays ? new Date(Date.now() + body.expiresInDays * 86_400_000).toISOString() : null;
      const { token, secret } = await cp.auth.createToken({ userId: caller.principal.userId, name: body.name, scope: body.readOnly ? 'read' : 'api', expiresAt });
      await cp.auth.audit({ userId: caller.principal.userId, action: 'token.create', target: token.id, detail: { name: token.name, scope: token.scope, expiresAt } });
      return c.json({ token: publicToken(token), secret }, 201);
    },
  );

  route(
    app, cp,
    { method: 'delete', path: '/api/v1/tokens/{id}', summary: 'Revoke one of your tokens', tag: 'tokens', params: z.object({ id: z.string() }) },
    async ({ c, caller }, { params }) => {
      if (!(await cp.auth.revokeToken(caller.principal.userId, params.id))) throw new UserError('not_found', `No live token ${params.id}.`, 'See `claude-vm token list`.');
      await cp.auth.audit({ userId: caller.principal.userId, action: 'token.revoke', target: params.id, detail: {} });
      return c.json({ revoked: params.id });
    },
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/audit', summary: 'Audit log: yours, or everyone’s for an admin', tag: 'audit', query: z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() }) },
    async ({ c, caller }, { query }) => c.json(await cp.auth.listAudit({ userId: caller.principal.isAdmin ? undefined : caller.principal.userId, limit: query.limit })),
  );
}

export function publicUser(u: UserRow) {
  return { id: u.id, name: u.name, admin: u.isAdmin, createdAt: u.createdAt };
}

export function publicToken(t: TokenRow) {
  return { id: t.id, name: t.name, scope: t.scope, expiresAt: t.expiresAt, revokedAt: t.revokedAt, lastUsedAt: t.lastUsedAt, createdAt: t.createdAt };
}
