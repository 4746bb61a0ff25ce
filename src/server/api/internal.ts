/** @module Routes between the processes of one deployment (authenticated by the shared key, not by a user). */
import { UserError } from '../../protocol/errors.js';
import type { ControlPlane } from '../control-plane.js';
import { FORWARD_PATH, verifyForwarded } from '../forward.js';
import { route, type Api } from './route.js';

export function internalRoutes(app: Api, cp: ControlPlane): void {
  route(
    app, cp,
    { method: 'post', path: FORWARD_PATH, summary: 'A daemon call forwarded by another process of this deployment (MAC-authenticated)', tag: 'internal', access: 'public' },
    async ({ c }) => {
      const call = verifyForwarded(cp.box, await c.req.text(), c.req.header('x-claude-vm-mac'));
      if (!cp.tunnels.connected(call.workspaceId)) throw new UserError('provider_unavailable', 'This process does not hold that workspace tunnel.');
      return c.json({ result: await cp.tunnels.call(call.workspaceId, call.method, call.params) });
    },
  );
}
