/** @module Workspaces: lifecycle, logs, files, agent installs; exec and terminals are WebSockets (see ../streams.ts). */
import { stream } from 'hono/streaming';
import type { Context } from 'hono';
import { PassThrough, Readable, Writable } from 'node:stream';
import { UserError, isUserError } from '../../protocol/errors.js';
import { WORKSPACE_STATUSES, type ProgressEvent } from '../../protocol/types.js';
import { installAgent } from '../../core/agent-install.js';
import type { ControlPlane } from '../control-plane.js';
import { errorBody } from './index.js';
import { route, z, type Api, type Env } from './route.js';

const ID = z.object({ id: z.string() });

export function workspaceRoutes(app: Api, cp: ControlPlane): void {
  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces', summary: 'Your workspaces, with live status, uptime and cost', tag: 'workspaces', query: z.object({ status: z.enum(WORKSPACE_STATUSES).optional() }) },
    async ({ c, s }, { query }) => c.json(await s.workspaces.list({ status: query.status })),
  );

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/workspaces', summary: 'Create a workspace (or resume one named by target); progress as NDJSON when asked for', tag: 'workspaces', answer: 'ndjson',
      body: z.object({
        target: z.string().optional(), provider: z.string().optional(), image: z.string().optional(), branch: z.string().optional(),
        name: z.string().optional(), size: z.string().optional(), autoStopSeconds: z.number().int().min(0).optional(),
        allowDomains: z.array(z.string()).optional(),
      }),
    },
    ({ c, s }, { body }) => withProgress(c, (progress) => s.workspaces.up(body, progress), 201),
  );

  route(app, cp, { method: 'get', path: '/api/v1/workspaces/{id}', summary: 'One workspace', tag: 'workspaces', params: ID }, async ({ c, s }, { params }) => c.json(await s.workspaces.get(params.id)));

  route(
    app, cp,
    { method: 'post', path: '/api/v1/workspaces/{id}/start', summary: 'Start (resume) a stopped or deleted workspace', tag: 'workspaces', params: ID, answer: 'ndjson' },
    async ({ c, s }, { params }) => {
      const w = await s.workspaces.get(params.id);
      return withProgress(c, (progress) => s.workspaces.up({ target: w.id }, progress));
    },
  );

  route(
    app, cp,
    { method: 'post', path: '/api/v1/workspaces/{id}/stop', summary: 'Stop a workspace (snapshotting it first unless forced); its files stay', tag: 'workspaces', params: ID, body: z.object({ force: z.boolean().optional() }).optional(), answer: 'ndjson' },
    ({ c, s }, { params, body }) => withProgress(c, (progress) => s.workspaces.down(params.id, { force: body?.force }, progress)),
  );

  route(
    app, cp,
    { method: 'delete', path: '/api/v1/workspaces/{id}', summary: 'Delete a workspace (snapshotting it first); its data and snapshots stay unless purge', tag: 'workspaces', params: ID, query: z.object({ purge: z.enum(['true', 'false']).optional() }), answer: 'ndjson' },
    ({ c, s }, { params, query }) => withProgress(c, (progress) => s.workspaces.delete(params.id, { purge: query.purge === 'true' }, progress)),
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces/{id}/rules', summary: "The workspace's approval rules (the user's; the built-in ones always apply under them)", tag: 'workspaces', params: ID },
    async ({ c, s }, { params }) => c.json(await s.rules.get(params.id)),
  );

  route(
    app, cp,
    {
      method: 'put', path: '/api/v1/workspaces/{id}/rules', summary: 'Replace the approval rules (null: the built-in ones only); a running agent gets them at once', tag: 'workspaces', params: ID,
      body: z.object({ text: z.string().nullable() }),
    },
    async ({ c, s }, { params, body }) => c.json(await s.rules.set(params.id, body.text)),
  );

  route(
    app, cp,
    { method: 'post', path: '/api/v1/workspaces/{id}/snapshots', summary: 'Snapshot a running workspace now', tag: 'snapshots', params: ID, body: z.object({ includeCaches: z.boolean().optional() }).optional(), answer: 'ndjson' },
    ({ c, s }, { params, body }) => withProgress(c, (progress) => s.snapshots.take(params.id, { includeCaches: body?.includeCaches }, progress), 201),
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces/{id}/snapshots', summary: "A workspace's snapshots, oldest first", tag: 'snapshots', params: ID },
    async ({ c, s }, { params }) => c.json(await s.snapshots.list(params.id)),
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces/{id}/export', summary: 'The latest snapshot as a tar (a running workspace is snapshotted first)', tag: 'snapshots', params: ID, answer: 'binary' },
    async ({ c, s }, { params }) => {
      // Everything that can fail before the first byte (no snapshot, the snapshot itself) is a normal error answer.
      const ex = await s.snapshots.prepareExport(params.id);
      const body = new PassThrough();
      ex.write(body).then(() => body.end(), (e: unknown) => body.destroy(e as Error));
      c.header('Content-Type', 'application/x-tar');
      c.header('Content-Disposition', `attachment; filename="claude-vm-${ex.info.workspaceId}.tar"`);
      return c.body(Readable.toWeb(body) as ReadableStream);
    },
  );

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/workspaces/import', summary: 'A new workspace from an exported tar (the request body); progress as NDJSON', tag: 'snapshots', answer: 'ndjson',
      query: z.object({ provider: z.string().optional(), name: z.string().optional(), size: z.string().optional() }),
    },
    ({ c, s }, { query }) => {
      const raw = c.req.raw.body;
      if (!raw) throw new UserError('invalid_argument', 'The request has no body: send the exported tar.');
      const input = Readable.fromWeb(raw as import('node:stream/web').ReadableStream<Uint8Array>);
      return withProgress(c, (progress) => s.snapshots.import(input, query, progress), 201);
    },
  );

  route(
    app, cp,
    {
      method: 'get', path: '/api/v1/workspaces/{id}/logs', summary: "The workspace's own output (entrypoint and daemon)", tag: 'workspaces', params: ID, answer: 'text',
      query: z.object({ follow: z.enum(['true', 'false']).optional(), tail: z.coerce.number().int().min(0).optional() }),
    },
    async ({ c, s }, { params, query }) => {
      const w = await s.workspaces.get(params.id);
      const ac = new AbortController();
      c.header('Content-Type', 'text/plain; charset=utf-8');
      return stream(c, async (out) => {
        out.onAbort(() => ac.abort());
        const sink = new Writable({ write: (chunk: Buffer, _e, cb) => void out.write(chunk).then(() => cb(), cb) });
        const detach = query.follow === 'true' ? cp.attach(w.id) : () => undefined;
        try {
          await Promise.race([s.workspaces.logs(w.id, { follow: query.follow === 'true', tail: query.tail, stdout: sink }), new Promise((r) => ac.signal.addEventListener('abort', r))]);
        } catch (e) {
          await out.write(`\n[claude-vm: ${isUserError(e) ? e.message : 'the log stream failed'}]\n`);
        } finally {
          detach();
        }
      });
    },
  );

  for (const [path, summary] of [
    ['/api/v1/workspaces/{id}/exec', 'Run a command: query argv (repeated), tty, rows, cols. Frames: 1-byte channel (0 stdin, 1 stdout, 2 stderr, 3 control JSON) + data'],
    ['/api/v1/workspaces/{id}/terminal', "An interactive terminal in the workspace's tmux session (reattaches); same frames as exec"],
  ] as const) {
    route(app, cp, { method: 'get', path, summary, tag: 'terminals', params: ID, answer: 'websocket' }, async ({ c, s }, { params }) => {
      await s.workspaces.get(params.id);
      return c.json(errorBody(new UserError('invalid_argument', 'This route is a WebSocket: connect with an Upgrade request.')), 426);
    });
  }

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/workspaces/{id}/agents/{agent}/install', summary: "Install an agent's CLI into a running workspace (progress as NDJSON)", tag: 'agents', answer: 'ndjson',
      params: z.object({ id: z.string(), agent: z.string() }), body: z.object({ caPem: z.string().optional() }).optional(),
    },
    async ({ c, s }, { params, body }) => {
      await s.workspaces.get(params.id);
      return withProgress(c, (progress) => installAgent(s.workspaces, cp.daemons, { workspace: params.id, agent: params.agent, caPem: body?.caPem }, progress));
    },
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces/{id}/changes', summary: 'What changed since the workspace began: files and a unified diff (git-tracked and untracked, or against a baseline for non-git projects)', tag: 'files', params: ID },
    async ({ c, s }, { params }) => c.json(await cp.daemons.call(await s.workspaces.runningTarget(params.id), 'git.changes', {})),
  );

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/workspaces/{id}/git/commit', summary: 'Commit every change in the project (and push, if asked)', tag: 'files', params: ID,
      body: z.object({ message: z.string().min(1).max(10_000), push: z.boolean().optional() }),
    },
    async ({ c, s }, { params, body }) => {
      const t = await s.workspaces.runningTarget(params.id);
      const r = await cp.daemons.call(t, 'git.commit', body);
      await cp.auth.audit({ userId: s.principal.userId, action: body.push ? 'git.commit-push' : 'git.commit', target: t.workspaceId, detail: { commit: (r as { commit?: string }).commit } });
      return c.json(r);
    },
  );

  route(
    app, cp,
    { method: 'get', path: '/api/v1/workspaces/{id}/files', summary: 'List a directory or read a file (base64) under the workspace', tag: 'files', params: ID, query: z.object({ path: z.string().default('.') }) },
    async ({ c, s }, { params, query }) => {
      const t = await s.workspaces.runningTarget(params.id);
      return c.json(await cp.daemons.call(t, 'fs.get', { path: query.path }));
    },
  );

  route(
    app, cp,
    {
      method: 'put', path: '/api/v1/workspaces/{id}/files', summary: 'Write a file (base64 content), creating directories', tag: 'files', params: ID,
      body: z.object({ path: z.string().min(1), contentBase64: z.string(), mode: z.number().int().min(0).max(0o777).optional() }),
    },
    async ({ c, s }, { params, body }) => {
      const t = await s.workspaces.runningTarget(params.id);
      return c.json(await cp.daemons.call(t, 'fs.put', { ...body }));
    },
  );

  route(
    app, cp,
    { method: 'delete', path: '/api/v1/workspaces/{id}/files', summary: 'Delete a file or an empty directory', tag: 'files', params: ID, query: z.object({ path: z.string().min(1) }) },
    async ({ c, s }, { params, query }) => {
      const t = await s.workspaces.runningTarget(params.id);
      return c.json(await cp.daemons.call(t, 'fs.delete', { path: query.path }));
    },
  );
}

/**
 * Runs a long operation. A client that asks for NDJSON gets `{"progress":…}` lines, then `{"result":…}` or
 * `{"error":…}`; others get plain JSON at the end. The operation carries on if the client goes away (a closed
 * laptop must not leave a half-created workspace).
 */
export function withProgress(c: Context<Env>, work: (progress: (e: ProgressEvent) => void) => Promise<unknown>, status = 200): Response | Promise<Response> {
  if (!c.req.header('accept')?.includes('application/x-ndjson')) return work(() => undefined).then((r) => c.json(r as object, status as 200));
  c.header('Content-Type', 'application/x-ndjson');
  return stream(c, async (out) => {
    const line = (o: object) => void out.write(JSON.stringify(o) + '\n').catch(() => undefined);
    try {
      line({ result: await work((p) => line({ progress: p })) });
    } catch (e) {
      if (!isUserError(e)) process.stderr.write(`claude-vm server: ${(e as Error).stack ?? e}\n`);
      line(isUserError(e) ? errorBody(e) : { error: { code: 'internal', message: 'The server failed during this operation; see its log.' } });
    }
  });
}
