/** @module Conversations: create, send (queued by the daemon), cancel, interrupt; events as JSON or SSE; approvals. */
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { UserError } from '../../protocol/errors.js';
import type { AnyEvent, EventPayloads } from '../../protocol/events.js';
import type { ControlPlane } from '../control-plane.js';
import { errorBody } from './index.js';
import { route, z, type Api } from './route.js';

const ID = z.object({ id: z.string() });
const SLOW_VIEWER_BYTES = 4 * 1024 * 1024;

/** One serialisation per event, however many viewers it goes to. */
const frames = new WeakMap<AnyEvent, string>();
function sseFrame(e: AnyEvent): string {
  let f = frames.get(e);
  if (!f) frames.set(e, (f = `id: ${e.seq}\nevent: event\ndata: ${JSON.stringify(e)}\n\n`));
  return f;
}

export function conversationRoutes(app: Api, cp: ControlPlane): void {
  route(
    app, cp,
    { method: 'get', path: '/api/v1/conversations', summary: 'Your conversations (of one workspace, or all)', tag: 'conversations', query: z.object({ workspace: z.string().optional() }) },
    async ({ c, s }, { query }) => c.json(await s.conversations.list(query.workspace)),
  );

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/conversations', summary: 'Start a conversation with an agent in a running workspace', tag: 'conversations',
      body: z.object({ workspace: z.string().min(1), agent: z.string().optional(), model: z.string().optional(), message: z.string().optional() }),
    },
    async ({ c, s }, { body }) => c.json(await s.conversations.create(body), 201),
  );

  route(app, cp, { method: 'get', path: '/api/v1/conversations/{id}', summary: 'One conversation: state, queue, cost', tag: 'conversations', params: ID }, async ({ c, s }, { params }) =>
    c.json(await s.conversations.get(params.id)),
  );

  route(
    app, cp,
    { method: 'post', path: '/api/v1/conversations/{id}/messages', summary: 'Send a message; queued while a turn runs', tag: 'conversations', params: ID, body: z.object({ text: z.string().min(1) }) },
    async ({ c, s }, { params, body }) => c.json(await s.conversations.send(params.id, body.text), 202),
  );

  route(
    app, cp,
    { method: 'delete', path: '/api/v1/conversations/{id}/messages/{queueId}', summary: 'Cancel a queued message', tag: 'conversations', params: z.object({ id: z.string(), queueId: z.string() }) },
    async ({ c, s }, { params }) => {
      await s.conversations.cancel(params.id, params.queueId);
      return c.json({ cancelled: params.queueId });
    },
  );

  route(app, cp, { method: 'post', path: '/api/v1/conversations/{id}/interrupt', summary: 'Interrupt the running turn', tag: 'conversations', params: ID }, async ({ c, s }, { params }) =>
    c.json({ interrupted: await s.conversations.interrupt(params.id) }),
  );

  route(
    app, cp,
    {
      method: 'get', path: '/api/v1/conversations/{id}/events',
      summary: 'Events from sequence `from`; as Server-Sent Events (live, resumable with Last-Event-ID) when the client accepts text/event-stream',
      tag: 'conversations', params: ID, answer: 'sse',
      query: z.object({ from: z.coerce.number().int().min(1).optional(), limit: z.coerce.number().int().min(1).max(10_000).optional() }),
    },
    async ({ c, s }, { params, query }) => {
      const conv = await s.conversations.locate(params.id);
      const lastEventId = Number(c.req.header('last-event-id'));
      const from = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId + 1 : query.from ?? 1;
      if (!c.req.header('accept')?.includes('text/event-stream')) {
        const out: AnyEvent[] = [];
        const limit = query.limit ?? 1000;
        await cp.hub.read(conv.workspaceId, conv.id, { from, follow: false, onEvent: (e) => void (out.length < limit && out.push(e)) });
        return c.json(out);
      }
      // Written straight to Node's response: thousands of viewers each get every event, and web streams with a
      // promise per event cost several times the CPU and memory (bench/control-plane.ts measured it).
      const res = (c.env as { outgoing: ServerResponse }).outgoing;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      const ac = new AbortController();
      res.once('close', () => ac.abort());
      const detach = cp.attach(conv.workspaceId);
      // Comments keep proxies from closing a quiet stream, and tell the client the stream is alive.
      const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      void cp.hub
        .read(conv.workspaceId, conv.id, {
          from, follow: true, signal: ac.signal,
          onEvent: (e) => {
            // A viewer that cannot keep up is dropped rather than buffered without end: it reconnects with
            // Last-Event-ID and catches up from the store.
            if (res.writableLength > SLOW_VIEWER_BYTES) return void res.destroy();
            res.write(sseFrame(e));
          },
        })
        .finally(() => {
          clearInterval(beat);
          detach();
          res.end();
        });
      return RESPONSE_ALREADY_SENT;
    },
  );

  route(app, cp, { method: 'get', path: '/api/v1/conversations/{id}/tui', summary: "The agent's own terminal UI on this conversation's session (WebSocket, exec frames)", tag: 'terminals', params: ID, answer: 'websocket' }, async ({ c, s }, { params }) => {
    await s.conversations.locate(params.id);
    return c.json(errorBody(new UserError('invalid_argument', 'This route is a WebSocket: connect with an Upgrade request.')), 426);
  });

  route(app, cp, { method: 'get', path: '/api/v1/approvals', summary: 'Approval requests still waiting for a decision, across your conversations', tag: 'approvals' }, async ({ c, s }) =>
    c.json(await cp.pendingApprovals(s.principal.userId)),
  );

  route(
    app, cp,
    { method: 'post', path: '/api/v1/approvals/{id}', summary: 'Decide an approval request', tag: 'approvals', params: ID, body: z.object({ decision: z.enum(['allow', 'deny']), remember: z.boolean().optional() }) },
    async ({ c, s }, { params, body }) => {
      const events = await cp.events.ofTypes(s.principal.userId, ['approval.requested']);
      const req = events.find((e) => (e.data as EventPayloads['approval.requested']).approvalId === params.id);
      if (!req) throw new UserError('not_found', `No approval request ${params.id}.`, 'See `claude-vm approvals`.');
      const t = await s.workspaces.runningTarget(req.workspaceId);
      const r = (await cp.daemons.call(t, 'approval.decide', { id: req.conversationId, approvalId: params.id, decision: body.decision, remember: !!body.remember, by: s.principal.name })) as { approvalId: string; decision: string; remember?: string };
      // "Always allow": the daemon says which rules would let the command through; the workspace's rules keep them.
      const remembered = body.remember && r.remember ? await s.rules.prepend(req.workspaceId, r.remember) : undefined;
      await cp.auth.audit({ userId: s.principal.userId, action: `approval.${body.decision}`, target: params.id, detail: { conversation: req.conversationId, ...(remembered ? { remembered: r.remember } : {}) } });
      const { remember: _, ...answer } = r;
      return c.json({ ...answer, ...(remembered ? { rulesAdded: r.remember!.split('\n') } : {}) });
    },
  );
}
