/** @module The live stream behind the web UI's dashboard: workspaces, conversations, approvals, notifications. */
import { streamSSE } from 'hono/streaming';
import { workspaceInfo } from '../../core/workspaces.js';
import type { ControlPlane } from '../control-plane.js';
import { route, type Api } from './route.js';

/** Workspace rows are cheap to read; comparing snapshots catches every change, whichever process made it. */
const WORKSPACE_POLL_MS = 2000;

export function streamRoutes(app: Api, cp: ControlPlane): void {
  route(
    app, cp,
    { method: 'get', path: '/api/v1/stream', summary: 'Server-Sent Events for your dashboard: workspaces, conversation, approvals, notification', tag: 'stream', answer: 'sse' },
    ({ c, caller }) => {
      const userId = caller.principal.userId;
      return streamSSE(c, async (sse) => {
        let chain = Promise.resolve();
        const ac = new AbortController();
        const send = (event: string, data: unknown) => {
          chain = chain.then(() => sse.writeSSE({ event, data: JSON.stringify(data) })).catch(() => ac.abort());
        };
        sse.onAbort(() => ac.abort());
        const unsubscribe = cp.streams.subscribe(userId, send);
        let last = '';
        const pushWorkspaces = async () => {
          const providers = new Map((await cp.store.listProviders()).map((p) => [p.name, p]));
          const list = (await cp.store.listWorkspaces(userId)).filter((w) => w.status !== 'deleted').map((w) => workspaceInfo(w, providers.get(w.provider)));
          // Uptime and cost move every second; they alone are not a change worth sending.
          const shape = JSON.stringify(list.map(({ uptimeSeconds: _u, costUsd: _c, ...rest }) => rest));
          if (shape !== last) {
            last = shape;
            send('workspaces', list);
          }
        };
        const poll = setInterval(() => void pushWorkspaces().catch(() => undefined), WORKSPACE_POLL_MS);
        const beat = setInterval(() => void sse.write(': keep-alive\n\n').catch(() => ac.abort()), 15_000);
        try {
          await pushWorkspaces();
          send('approvals', await cp.pendingApprovals(userId));
          await new Promise<void>((resolve) => (ac.signal.aborted ? resolve() : ac.signal.addEventListener('abort', () => resolve(), { once: true })));
        } finally {
          clearInterval(poll);
          clearInterval(beat);
          unsubscribe();
        }
      });
    },
  );
}
