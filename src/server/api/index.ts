/** @module The HTTP API under /api/v1: authentication for every route but a few public ones, errors as JSON. */
import { OpenAPIHono } from '@hono/zod-openapi';
import { UserError, type ErrorCode } from '../../protocol/errors.js';
import { authenticate } from '../auth.js';
import type { ControlPlane } from '../control-plane.js';
import type { Api, Env } from './route.js';
import { accountRoutes } from './accounts.js';
import { providerRoutes } from './providers.js';
import { workspaceRoutes } from './workspaces.js';
import { conversationRoutes } from './conversations.js';
import { VERSION } from '../../version.js';

export const API_PREFIX = '/api/v1';

/** Routes anyone may call: liveness, the API document, and logging in (which checks the token it is given). */
export const PUBLIC_PATHS = new Set([`${API_PREFIX}/health`, `${API_PREFIX}/openapi.json`, `${API_PREFIX}/auth/session`, `${API_PREFIX}/tunnel`]);

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
    if (e instanceof SyntaxError) return c.json(errorBody(new UserError('invalid_argument', 'The request body is not valid JSON.')), 400);
    process.stderr.write(`claude-vm server: ${c.req.method} ${c.req.path}: ${e.stack ?? e.message}\n`);
    return c.json({ error: { code: 'internal', message: 'The server failed to handle this request; see its log.' } }, 500);
  });
  app.notFound((c) => c.json(errorBody(new UserError('not_found', `No API route ${c.req.method} ${c.req.path}.`, 'See /api/v1/openapi.json.')), 404));

  app.use(`${API_PREFIX}/*`, async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return next();
    const caller = await authenticate(
      cp.auth,
      {
        authorization: c.req.header('authorization'),
        cookie: c.req.header('cookie'),
        origin: c.req.header('origin'),
        host: c.req.header('host'),
        csrf: c.req.header('x-csrf-token'),
      },
      { method: c.req.method, expect: 'api', upgrade: c.req.header('upgrade')?.toLowerCase() === 'websocket' || c.req.header('accept')?.includes('text/event-stream') },
    );
    c.set('caller', caller);
    await next();
  });

  accountRoutes(app, cp);
  providerRoutes(app, cp);
  workspaceRoutes(app, cp);
  conversationRoutes(app, cp);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'cvm_session' });
  app.doc31(`${API_PREFIX}/openapi.json`, { openapi: '3.1.0', info: { title: 'claude-vm control plane', version: VERSION } });
  return app;
}
