/** @module SSH: your public keys, and each workspace's host key (for known_hosts); the streams are WebSockets. */
import { UserError } from '../../protocol/errors.js';
import { generateSshKey, parsePublicKey } from '../../core/ssh-keys.js';
import type { ControlPlane } from '../control-plane.js';
import { errorBody } from './index.js';
import { route, z, type Api } from './route.js';

export const SSH_USER = 'dev';
export const SSH_HOST_SUFFIX = '.claude-vm';

export function sshRoutes(app: Api, cp: ControlPlane): void {
  route(app, cp, { method: 'get', path: '/api/v1/ssh-keys', summary: 'Your SSH public keys (they open SSH to your workspaces)', tag: 'ssh' }, async ({ c, caller }) =>
    c.json(await cp.auth.listSshKeys(caller.principal.userId)),
  );

  route(
    app, cp,
    { method: 'post', path: '/api/v1/ssh-keys', summary: 'Add an SSH public key', tag: 'ssh', body: z.object({ publicKey: z.string().min(1).max(16_384), name: z.string().max(80).optional() }) },
    async ({ c, caller }, { body }) => {
      const k = parsePublicKey(body.publicKey);
      const row = await cp.auth.addSshKey(caller.principal.userId, { name: body.name || k.comment || k.type, publicKey: k.publicKey, fingerprint: k.fingerprint });
      await cp.auth.audit({ userId: caller.principal.userId, action: 'ssh-key.add', target: row.id, detail: { fingerprint: row.fingerprint } });
      return c.json(row, 201);
    },
  );

  route(
    app, cp,
    { method: 'delete', path: '/api/v1/ssh-keys/{id}', summary: 'Remove an SSH key (by id or fingerprint); it stops working at the next connection', tag: 'ssh', params: z.object({ id: z.string() }) },
    async ({ c, caller }, { params }) => {
      if (!(await cp.auth.removeSshKey(caller.principal.userId, params.id))) throw new UserError('not_found', `No SSH key ${params.id}.`, 'See `claude-vm ssh-key list`.');
      await cp.auth.audit({ userId: caller.principal.userId, action: 'ssh-key.remove', target: params.id, detail: {} });
      return c.json({ removed: params.id });
    },
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces/{id}/ssh-host', summary: "How to reach a workspace over SSH: host name, user, project directory and its host key", tag: 'ssh', params: z.object({ id: z.string() }) },
    async ({ c, s }, { params }) => {
      const w = await s.workspaces.get(params.id);
      const key = await cp.store.sshHostKey(w.id, () => generateSshKey(`${w.id}${SSH_HOST_SUFFIX}`));
      return c.json({ workspaceId: w.id, name: w.name, host: `${w.id}${SSH_HOST_SUFFIX}`, user: SSH_USER, projectDir: w.projectDir, hostPublicKey: key.publicKey, status: w.status });
    },
  );

  for (const [path, summary] of [
    ['/api/v1/workspaces/{id}/ssh', "The workspace's SSH server (WebSocket; binary frames are the SSH connection's bytes): what `claude-vm ssh --stdio` speaks"],
    ['/api/v1/workspaces/{id}/ports/{port}', "A TCP port on the workspace's loopback (WebSocket; binary frames are the bytes): what `claude-vm port-forward` uses"],
  ] as const) {
    route(app, cp, { method: 'get', path, summary, tag: 'ssh', params: z.object({ id: z.string(), port: z.string().optional() }), answer: 'websocket' }, async ({ c, s }, { params }) => {
      await s.workspaces.get(params.id);
      return c.json(errorBody(new UserError('invalid_argument', 'This route is a WebSocket: connect with an Upgrade request.')), 426);
    });
  }
}
