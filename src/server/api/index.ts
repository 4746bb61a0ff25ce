/** @module The HTTP API under /api/v1: authentication for every route but a few public ones, errors as JSON. */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { UserError, type ErrorCode } from '../../protocol/errors.js';
import { authenticate } from '../auth.js';
import type { ControlPlane } from '../control-plane.js';
import type { Api, Env } from './route.js';
import { accountRoutes } from './accounts.js';
import { providerRoutes } from './providers.js';
import { workspaceRoutes } from './workspaces.js';
import { conversationRoutes } from './conversations.js';
import { VERSION } from '../../version.js';
import { internalRoutes } from './internal.js';
import { sshRoutes } from './ssh.js';
import { streamRoutes } from './stream.js';
import { notificationRoutes } from './notifications.js';
import { uiRoutes } from '../ui.js';
import { FORWARD_PATH } from '../forward.js';

export const API_PREFIX = '/api/v1';

/** Routes anyone may call: liveness, the API document, and logging in (which checks the token it is given). */
/**
 * Routes (method and path) that take no user credentials, or authenticate their own way: logging in (the token in its
 * body), the tunnel (a workspace's token) and calls between processes (the shared key).
 */
export const PUBLIC_ROUTES = new Set([
  `GET ${API_PREFIX}/health`, `GET ${API_PREFIX}/openapi.json`, `POST ${API_PREFIX}/auth/session`, `GET ${API_PREFIX}/tunnel`, `POST ${FORWARD_PATH}`,
]);

export const STATUS: Record<ErrorCode, number> = {
  not_found: 404,
  ambiguous: 409,
  invalid_argument: 400,
  already_exists: 409,
  provider_unavailable: 503,
  image_missing: 400,
  source_failed: 422,
  wrong_state: 409,
  cancelled: 409,
  unauthorized: 401,
  forbidden: 403,
  limit_exceeded: 429,
};

export function errorBody(e: UserError): { error: { code: string; message: string; hint?: string } } {
  return { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } };
}

export function buildApi(cp: ControlPlane): Api {
  const app = new OpenAPIHono<Env>({
    // Invalid input is a 400 that names the field, in the same error shape as everything else.
    defaultHook: (result, c) => {
      if (result.success) return;
      const issue = result.error.issues[0];
      const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
      return c.json(errorBody(new UserError('invalid_argument', `Invalid request: ${where}${issue?.message ?? 'bad input'}.`)), 400);
    },
  });

  app.onError((e, c) => {
    if (e instanceof UserError) return c.json(errorBody(e), STATUS[e.code] as 400);
    // Hono's own refusals (a malformed JSON body, a body that is not JSON) keep their 4xx status.
    if (e instanceof HTTPException && e.status < 500) {
      const message = e.status === 415 ? 'The request body must be JSON (Content-Type: application/json).' : `Invalid request: ${e.message}.`;
      return c.json(errorBody(new UserError('invalid_argument', message)), e.status);
    }
    if (e instanceof SyntaxError) return c.json(errorBody(new UserError('invalid_argument', 'The request body is not valid JSON.')), 400);
    process.stderr.write(`claude-vm server: ${c.req.method} ${c.req.path}: ${e.stack ?? e.message}\n`);
    return c.json({ error: { code: 'internal', message: 'The server failed to handle this request; see its log.' } }, 500);
  });
  app.notFound((c) => c.json(errorBody(new UserError('not_found', `No API route ${c.req.method} ${c.req.path}.`, 'See /api/v1/openapi.json.')), 404));

  app.use(`${API_PREFIX}/*`, async (c, next) => {
    if (PUBLIC_ROUTES.has(`${c.req.method} ${c.req.path}`)) return next();
    const caller = await authenticate(
      cp.auth,
      {
        authorization: c.req.header('authorization'),
        cookie: c.req.header('cookie'),
        origin: c.req.header('origin'),
        host: c.req.header('host'),
        csrf: c.req.header('x-csrf-token'),
      },
      // SSE is a GET whose answer a foreign page cannot read (no CORS), so like any GET it is refused only when it
      // carries a foreign Origin; browsers send none on same-origin GETs. WebSockets have no such protection.
      { method: c.req.method, expect: 'api', upgrade: c.req.header('upgrade')?.toLowerCase() === 'websocket' },
    );
    c.set('caller', caller);
    await next();
  });

  accountRoutes(app, cp);
  providerRoutes(app, cp);
  workspaceRoutes(app, cp);
  conversationRoutes(app, cp);
  sshRoutes(app, cp);
  streamRoutes(app, cp);
  notificationRoutes(app, cp);
  internalRoutes(app, cp);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'cvm_session' });
  app.doc31(`${API_PREFIX}/openapi.json`, { openapi: '3.1.0', info: { title: 'claude-vm control plane', version: VERSION } });
  // Last: every path the API does not own is the web UI's.
  uiRoutes(app as unknown as Hono, cp);
  return app;
}
