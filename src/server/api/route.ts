/**
 * @module One way to declare an API route: its OpenAPI entry, input validation and auth level together, so the
 * document at /api/v1/openapi.json lists every route that exists and nothing else.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { UserError } from '../../protocol/errors.js';
import type { Caller } from '../auth.js';
import type { ControlPlane, UserServices } from '../control-plane.js';

export type Env = { Variables: { caller: Caller } };
export type Api = OpenAPIHono<Env>;

export type Access = 'user' | 'admin' | 'public';
/** How the route answers, for the document and for clients: JSON, or a stream of some kind. */
export type Answer = 'json' | 'sse' | 'ndjson' | 'text' | 'websocket' | 'empty' | 'binary';

export interface RouteSpec<P extends z.ZodObject | undefined, Q extends z.ZodObject | undefined, B extends z.ZodType | undefined> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag: string;
  access?: Access;
  params?: P;
  query?: Q;
  body?: B;
  answer?: Answer;
}

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;

export interface Input<P, Q, B> {
  params: Infer<P>;
  query: Infer<Q>;
  body: Infer<B>;
}

export interface Handle {
  c: Context<Env>;
  caller: Caller;
  /** The caller's own services: everything they return is the caller's (another user's things are "not found"). */
  s: UserServices;
}

const CONTENT: Record<Answer, string> = {
  json: 'application/json',
  sse: 'text/event-stream',
  ndjson: 'application/x-ndjson',
  text: 'text/plain',
  websocket: 'application/octet-stream',
  empty: 'application/json',
  binary: 'application/octet-stream',
};

export function route<P extends z.ZodObject | undefined, Q extends z.ZodObject | undefined, B extends z.ZodType | undefined>(
  app: Api,
  cp: ControlPlane,
  spec: RouteSpec<P, Q, B>,
  handler: (h: Handle, input: Input<P, Q, B>) => Promise<Response> | Response,
): void {
  const answer = spec.answer ?? 'json';
  const r = createRoute({
    method: spec.method,
    path: spec.path,
    summary: spec.summary,
    tags: [spec.tag],
    description: answer === 'websocket' ? 'WebSocket: connect with an Upgrade request. Binary frames; see docs/api.md.' : undefined,
    security: spec.access === 'public' ? [] : [{ bearer: [] }, { session: [] }],
    request: {
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.query ? { query: spec.query } : {}),
      ...(spec.body ? { body: { content: { 'application/json': { schema: spec.body } }, required: true } } : {}),
    },
    responses: {
      200: { description: 'Success', content: { [CONTENT[answer]]: { schema: z.any() } } },
      400: { description: 'Invalid input' },
      401: { description: 'Missing or invalid credentials' },
      404: { description: 'Not found (or not yours)' },
    },
  });
  app.openapi(r, (async (c: Context<Env>) => {
    const caller = c.get('caller');
    if (spec.access === 'admin' && !caller?.principal.isAdmin) throw new UserError('forbidden', 'Only an admin can do this.');
    const valid = c.req as unknown as { valid(k: string): unknown };
    const input = {
      params: spec.params ? valid.valid('param') : undefined,
      query: spec.query ? valid.valid('query') : undefined,
      body: spec.body ? valid.valid('json') : undefined,
    } as Input<P, Q, B>;
    return handler({ c, caller, s: caller ? cp.services(caller.principal) : (undefined as unknown as UserServices) }, input);
    // The handler's return type is checked by each handler; the document only promises JSON of any shape.
  }) as never);
}

export { z };
