/**
 * @module WebSocket routes: the workspace tunnel, and exec, terminal and TUI streams. Authenticated before the
 * upgrade (a refused upgrade gets a plain HTTP status), and each resolved through the caller's own services, so
 * another user's workspace is "not found" here too.
 *
 * Exec frames are binary: one channel byte, then data. 0 stdin (client→server), 1 stdout, 2 stderr, 3 control
 * (JSON: client sends {"resize":{rows,cols}} or {"eof":true}; server sends {"exit":code} or {"error":{…}}).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { PassThrough, Writable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { UserError, isUserError } from '../protocol/errors.js';
import type { ExecHandle } from '../providers/provider.js';
import { authenticate, type Caller } from './auth.js';
import type { ControlPlane } from './control-plane.js';
import { STATUS, errorBody } from './api/index.js';
import type { MuxStream } from '../protocol/mux.js';
import { generateSshKey } from '../core/ssh-keys.js';
import type { StreamIo } from '../client/client.js';

export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, control: 3 } as const;

const ROUTES: Array<{ re: RegExp; kind: 'tunnel' | 'exec' | 'terminal' | 'tui' | 'ssh' | 'port' }> = [
  { re: /^\/api\/v1\/tunnel$/, kind: 'tunnel' },
  { re: /^\/api\/v1\/workspaces\/([^/]+)\/exec$/, kind: 'exec' },
  { re: /^\/api\/v1\/workspaces\/([^/]+)\/terminal$/, kind: 'terminal' },
  { re: /^\/api\/v1\/conversations\/([^/]+)\/tui$/, kind: 'tui' },
  { re: /^\/api\/v1\/workspaces\/([^/]+)\/ssh$/, kind: 'ssh' },
  { re: /^\/api\/v1\/workspaces\/([^/]+)\/ports\/(\d+)$/, kind: 'port' },
];

export function upgradeHandler(cp: ControlPlane): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  return (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = ROUTES.map((r) => ({ ...r, m: r.re.exec(url.pathname) })).find((r) => r.m);
    if (!match) return refuse(socket, new UserError('not_found', `No WebSocket route ${url.pathname}.`));
    socket.on('error', () => socket.destroy());
    void (async () => {
      const caller = await authenticate(
        cp.auth,
        { authorization: req.headers.authorization, cookie: req.headers.cookie, origin: req.headers.origin, host: req.headers.host },
        { method: 'GET', expect: match.kind === 'tunnel' ? 'tunnel' : 'api', upgrade: true },
      );
      if (match.kind === 'tunnel') {
        const workspaceId = caller.workspaceId!;
        const w = await cp.store.getWorkspace(workspaceId);
        if (!w || w.ownerId !== caller.principal.userId) throw new UserError('unauthorized', 'This tunnel token is for no workspace.');
        return wss.handleUpgrade(req, socket, head, (ws) => cp.tunnels.attach(workspaceId, ws));
      }
      if (caller.scope === 'read') throw new UserError('forbidden', 'This token is read-only.');
      if (match.kind === 'ssh' || match.kind === 'port') {
        // Opened through the workspace's tunnel before the upgrade, so a refusal is a plain HTTP error.
        const stream = await openWorkspaceStream(cp, caller, match.kind, decodeURIComponent(match.m![1]!), Number(match.m![2]));
        return wss.handleUpgrade(req, socket, head, (ws) => relay(cp, ws, stream));
      }
      const open = await opener(cp, caller, match.kind, decodeURIComponent(match.m![1]!), url.searchParams);
      wss.handleUpgrade(req, socket, head, (ws) => void serveExec(cp, ws, open));
    })().catch((e) => refuse(socket, e));
  };
}

interface Opener {
  workspaceId: string;
  tty: { rows: number; cols: number } | undefined;
  withStdin: boolean;
  start(io: StreamIo): Promise<ExecHandle>;
}

/** Resolves what to run before upgrading, so a bad id or a stopped workspace is a plain HTTP error. */
async function opener(cp: ControlPlane, caller: Caller, kind: 'exec' | 'terminal' | 'tui', id: string, q: URLSearchParams): Promise<Opener> {
  const s = cp.services(caller.principal);
  const rows = Number(q.get('rows') ?? 24);
  const cols = Number(q.get('cols') ?? 80);
  const tty = kind !== 'exec' || q.get('tty') === 'true' ? { rows: rows > 0 ? rows : 24, cols: cols > 0 ? cols : 80 } : undefined;
  const env = { TERM: q.get('term') || 'xterm-256color' };
  if (kind === 'exec') {
    const argv = q.getAll('argv');
    if (!argv.length) throw new UserError('invalid_argument', 'No command given: pass argv query parameters.');
    const w = await s.workspaces.runningTarget(id);
    return { workspaceId: w.workspaceId, tty, withStdin: q.get('stdin') !== 'false', start: (io) => s.workspaces.exec(w.workspaceId, { ...io, argv, ...(tty ? { env } : {}) }) };
  }
  if (kind === 'terminal') {
    const w = await s.workspaces.runningTarget(id);
    return { workspaceId: w.workspaceId, tty, withStdin: true, start: (io) => s.workspaces.shell(w.workspaceId, { ...io, env }) };
  }
  const c = await s.conversations.locate(id);
  await s.workspaces.runningTarget(c.workspaceId);
  return { workspaceId: c.workspaceId, tty, withStdin: true, start: (io) => s.conversations.tui(c.id, { ...io, env }) };
}

async function openWorkspaceStream(cp: ControlPlane, caller: Caller, kind: 'ssh' | 'port', id: string, port: number): Promise<{ workspaceId: string; stream: MuxStream }> {
  const s = cp.services(caller.principal);
  const t = await s.workspaces.runningTarget(id);
  await cp.daemons.ensure(t);
  if (!cp.tunnels.connected(t.workspaceId)) {
    throw new UserError('provider_unavailable', "Another control-plane process holds this workspace's tunnel.", 'Route this user to one process (sticky sessions), or retry.');
  }
  if (kind === 'port') {
    if (!(port >= 1 && port <= 65535)) throw new UserError('invalid_argument', `Invalid port ${port}.`);
    return { workspaceId: t.workspaceId, stream: await cp.tunnels.openStream(t.workspaceId, { kind: 'tcp', port }) };
  }
  const keys = await cp.auth.listSshKeys(caller.principal.userId);
  if (!keys.length) throw new UserError('unauthorized', 'You have no SSH key on the control plane.', 'Run `claude-vm config-ssh` (it makes and adds one), or `claude-vm ssh-key add ~/.ssh/id_ed25519.pub`.');
  const host = await cp.store.sshHostKey(t.workspaceId, () => generateSshKey(`${t.workspaceId}.claude-vm`));
  const authorizedKeys = keys.map((k) => k.publicKey).join('\n') + '\n';
  return { workspaceId: t.workspaceId, stream: await cp.tunnels.openStream(t.workspaceId, { kind: 'ssh', hostKey: host.privateKey, authorizedKeys }) };
}

/** Bytes both ways between a client's WebSocket and a tunnel stream, at the pace of the slower side. */
function relay(cp: ControlPlane, ws: WebSocket, o: { workspaceId: string; stream: MuxStream }): void {
  const detach = cp.attach(o.workspaceId);
  const { stream } = o;
  stream.on('data', (d: Buffer) => {
    ws.send(d, { binary: true }, () => {
      if (stream.isPaused() && ws.bufferedAmount < 1 << 20) stream.resume();
    });
    if (ws.bufferedAmount > 4 << 20) stream.pause();
  });
  stream.on('end', () => ws.close(1000));
  stream.on('close', () => (ws.readyState === ws.OPEN ? ws.close(1000) : undefined, detach()));
  ws.on('message', (data: Buffer) => {
    if (!stream.write(data)) {
      ws.pause();
      stream.once('drain', () => ws.resume());
    }
  });
  ws.on('close', () => stream.destroy());
  ws.on('error', () => stream.destroy());
}

async function serveExec(cp: ControlPlane, ws: WebSocket, o: Opener): Promise<void> {
  const detach = cp.attach(o.workspaceId);
  const frame = (channel: number, data: Buffer | string) => Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(data) ? data : Buffer.from(data)]);
  const control = (m: object) => ws.readyState === ws.OPEN && ws.send(frame(CHANNEL.control, JSON.stringify(m)));
  // Output waits for the socket to take the previous frame: a slow client slows the command, memory stays flat.
  const sink = (channel: number) =>
    new Writable({ write: (chunk: Buffer, _e, cb) => (ws.readyState === ws.OPEN ? ws.send(frame(channel, chunk), (err) => cb(err ?? undefined)) : cb()) });
  const stdin = o.withStdin ? new PassThrough() : undefined;
  let handle: ExecHandle | undefined;
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary || !data.length) return;
    const body = data.subarray(1);
    if (data[0] === CHANNEL.stdin) stdin?.write(body);
    else if (data[0] === CHANNEL.control) {
      try {
        const m = JSON.parse(body.toString()) as { resize?: { rows: number; cols: number }; eof?: boolean };
        if (m.resize) handle?.resize(m.resize.rows, m.resize.cols);
        if (m.eof) stdin?.end();
      } catch {
        // A malformed control frame is ignored, like an unknown escape sequence.
      }
    }
  });
  ws.on('close', () => stdin?.end());
  try {
    handle = await o.start({ tty: o.tty, stdin, stdout: sink(CHANNEL.stdout), stderr: sink(CHANNEL.stderr) });
    const code = await handle.exit;
    control({ exit: code });
  } catch (e) {
    control(isUserError(e) ? errorBody(e) : { error: { code: 'internal', message: 'The command could not be started.' } });
  } finally {
    detach();
    ws.close(1000);
  }
}

function refuse(socket: Duplex, e: unknown): void {
  const err = isUserError(e) ? e : new UserError('provider_unavailable', 'The server failed to open this stream.');
  if (!isUserError(e)) process.stderr.write(`claude-vm server: upgrade failed: ${(e as Error)?.stack ?? e}\n`);
  const status = STATUS[err.code];
  const body = JSON.stringify(errorBody(err));
  socket.end(`HTTP/1.1 ${status} ${err.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
