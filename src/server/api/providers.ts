/** @module Providers (where workspaces run) and agent settings (which model endpoint and credentials agents use). */
import { PROVIDER_TYPES } from '../../providers/registry.js';
import type { ControlPlane } from '../control-plane.js';
import { route, z, type Api } from './route.js';

const OPTIONS = z.record(z.string(), z.string());

export function providerRoutes(app: Api, cp: ControlPlane): void {
  route(app, cp, { method: 'get', path: '/api/v1/provider-types', summary: 'Provider types this server knows, with their options and sizes', tag: 'providers' }, ({ c }) =>
    c.json(Object.values(PROVIDER_TYPES).map(({ type, description, isolates, options, sizes, defaultSize }) => ({ type, description, isolates, options, sizes, defaultSize }))),
  );

  route(app, cp, { method: 'get', path: '/api/v1/providers', summary: 'Providers you can use (secret options masked)', tag: 'providers' }, async ({ c, s }) => c.json(await s.providers.list()));

  route(
    app, cp,
    { method: 'post', path: '/api/v1/providers', summary: "Add a provider (an admin's are shared)", tag: 'providers', body: z.object({ name: z.string(), type: z.string().optional(), options: OPTIONS.optional() }) },
    async ({ c, s }, { body }) => {
      const p = await s.providers.add(body);
      // Option names only: values may be credentials.
      await cp.auth.audit({ userId: s.principal.userId, action: 'provider.add', target: p.name, detail: { type: p.type, options: Object.keys(body.options ?? {}) } });
      return c.json(p, 201);
    },
  );

  route(
    app, cp,
    { method: 'patch', path: '/api/v1/providers/{name}', summary: 'Change provider options (an empty value removes one)', tag: 'providers', params: z.object({ name: z.string() }), body: z.object({ options: OPTIONS }) },
    async ({ c, s }, { params, body }) => {
      const p = await s.providers.setOptions(params.name, body.options);
      await cp.auth.audit({ userId: s.principal.userId, action: 'provider.set-options', target: p.name, detail: { options: Object.keys(body.options) } });
      return c.json(p);
    },
  );

  route(app, cp, { method: 'delete', path: '/api/v1/providers/{name}', summary: 'Delete a provider with no workspaces', tag: 'providers', params: z.object({ name: z.string() }) }, async ({ c, s }, { params }) => {
    await s.providers.delete(params.name);
    await cp.auth.audit({ userId: s.principal.userId, action: 'provider.delete', target: params.name, detail: {} });
    return c.json({ deleted: params.name });
  });

  route(app, cp, { method: 'get', path: '/api/v1/agents', summary: 'Your agent settings (secrets masked)', tag: 'agents' }, async ({ c, s }) => c.json(await s.agents.list()));

  route(
    app, cp,
    {
      method: 'put', path: '/api/v1/agents/{agent}', summary: 'Set base URL, model and secrets of an agent, for all your workspaces or one', tag: 'agents',
      params: z.object({ agent: z.string() }),
      body: z.object({ workspace: z.string().optional(), baseUrl: z.string().optional(), model: z.string().optional(), secrets: z.record(z.string(), z.string()).optional() }),
    },
    async ({ c, s }, { params, body }) => {
      const workspaceId = body.workspace ? (await s.workspaces.get(body.workspace)).id : undefined;
      const r = await s.agents.set({ agent: params.agent, workspaceId, baseUrl: body.baseUrl, model: body.model, secrets: body.secrets });
      if (body.secrets && Object.keys(body.secrets).length) {
        await cp.auth.audit({ userId: s.principal.userId, action: 'agent.secrets.set', target: params.agent, detail: { names: Object.keys(body.secrets), workspace: workspaceId ?? null } });
      }
      return c.json(r);
    },
  );
}
