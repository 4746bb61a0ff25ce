/**
 * The daemon's tunnel client (src/daemon/tunnel.ts) against a scripted control plane: the REAL daemon process
 * (`dist/src/daemon/main.js serve`, as nobody when the tests run as root) dials a WebSocket server in this file
 * that speaks the server side of src/protocol/tunnel.ts and stores what it acknowledges.
 *
 * No agent runs: events come from RPCs that only touch the log. A conversation is created without a message, and
 * while its TUI is held on the local socket, sent messages queue (the TUI keeps the agent out) and are cancelled.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AnyEvent, ConversationInfo } from '../src/protocol/events.js';
import { TUNNEL_PATH, type DaemonMessage, type ServerMessage, type TunnelConfig } from '../src/protocol/tunnel.js';
import { NOBODY, asNobody, tempRoot } from './support/driver-harness.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'daemon', 'main.js');
const TIMEOUT = 60_000;

async function until(what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

type Hello = Extract<DaemonMessage, { t: 'hello' }>;
type Res = Extract<DaemonMessage, { t: 'res' }>;

interface Connection {
  ws: WebSocket;
  hello?: Hello;
  welcome?: Record<string, number>;
  /** Every event received on this connection, duplicates included. */
  events: AnyEvent[];
  closeCode?: number;
}

/** The server side of the tunnel: stores events durably (a map per conversation) and acknowledges them. */
class ControlPlane {
  readonly connections: Connection[] = [];
  readonly stored = new Map<string, Map<number, AnyEvent>>();
  readonly infos = new Map<string, ConversationInfo>();
  refused = 0;
  /** While set, events are kept in memory only (lost with the connection) and not acknowledged. */
  holdAcks = false;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly pending = new Map<number, (m: Res) => void>();
  private nextId = 1;

  private constructor(
    private readonly http: Server,
    readonly url: string,
    public token: string,
  ) {}

  /** On loopback TCP, or on a unix socket when `socketPath` is given. */
  static async start(token: string, socketPath?: string): Promise<ControlPlane> {
    const http = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      if (socketPath) http.listen(socketPath, resolve);
      else http.listen(0, '127.0.0.1', resolve);
    });
    if (socketPath) chmodSync(socketPath, 0o666);
    const url = socketPath ? `unix:${socketPath}` : `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const cp = new ControlPlane(http, url, token);
    http.on('upgrade', (req, socket, head) => {
      if (req.url !== TUNNEL_PATH || req.headers.authorization !== `Bearer ${cp.token}`) {
        cp.refused++;
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      cp.wss.handleUpgrade(req, socket, head, (ws) => cp.accept(ws));
    });
    return cp;
  }

  get live(): Connection | undefined {
    const c = this.connections.at(-1);
    return c && c.closeCode === undefined ? c : undefined;
  }

  /** The sequence numbers stored for a conversation, in order. */
  seqs(id: string): number[] {
    return [...(this.stored.get(id)?.keys() ?? [])].sort((a, b) => a - b);
  }

  async req(method: string, params: Record<string, unknown> = {}): Promise<Res> {
    const conn = this.live;
    if (!conn?.welcome) throw new Error('no tunnel');
    const id = this.nextId++;
    const answered = new Promise<Res>((resolve) => this.pending.set(id, resolve));
    this.send(conn.ws, { t: 'req', id, method, params });
    return answered;
  }

  async result(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const r = await this.req(method, params);
    if (r.error) throw new Error(`${method}: ${r.error.message}`);
    return r.result;
  }

  /** Drops the TCP connection without a close frame, as a crashed server or a cut network would. */
  kill(): void {
    this.live?.ws.terminate();
  }

  close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }

  private accept(ws: WebSocket): void {
    const conn: Connection = { ws, events: [] };
    this.connections.push(conn);
    let held: AnyEvent[] = [];
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as DaemonMessage;
      if (m.t === 'hello') {
        conn.hello = m;
        for (const i of m.conversations) this.infos.set(i.id, i);
        conn.welcome = this.acked();
        this.send(ws, { t: 'welcome', acked: conn.welcome });
      } else if (m.t === 'events') {
        conn.events.push(...m.events);
        if (this.holdAcks) held.push(...m.events);
        else {
          for (const e of m.events) {
            const s = this.stored.get(e.conversationId) ?? new Map<number, AnyEvent>();
            this.stored.set(e.conversationId, s);
            if (!s.has(e.seq)) s.set(e.seq, e);
          }
          this.send(ws, { t: 'ack', acked: this.acked() });
        }
      } else if (m.t === 'conversation') this.infos.set(m.info.id, m.info);
      else if (m.t === 'res') this.pending.get(m.id)?.(m);
    });
    ws.on('close', (code) => {
      conn.closeCode = code;
      held = [];
    });
  }

  /** Per conversation, the end of the gap-free run from 1: what a reconnecting daemon must resend after. */
  private acked(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, s] of this.stored) {
      let n = 0;
      while (s.has(n + 1)) n++;
      out[id] = n;
    }
    return out;
  }

  private send(ws: WebSocket, m: ServerMessage): void {
    ws.send(JSON.stringify(m));
  }
}

/** A daemon process on its own temp root, and its local socket. */
class DaemonProcess {
  output = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    readonly base: string,
    readonly root: string,
  ) {
    const project = join(base, 'project');
    for (const d of [root, project]) mkdirSync(d, { recursive: true });
    if (asNobody) for (const d of [base, root, project]) chownSync(d, 65534, 65534);
    writeFileSync(join(root, 'daemon.json'), JSON.stringify({ workspaceId: 'w1', projectDir: project }));
    const argv = [process.execPath, MAIN, 'serve'];
    this.proc = spawn(asNobody ? 'setpriv' : argv[0]!, asNobody ? [...NOBODY, ...argv] : argv.slice(1), {
      env: { ...process.env, CLAUDE_VM_ROOT: root, CLAUDE_VM_SECRET_DIR: join(base, 'secrets'), HOME: base },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (d) => (this.output += d));
    this.proc.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  /** A fresh root; `tunnel` is written before the daemon starts when given. */
  static async start(t: { after: (fn: () => unknown) => void }, tunnel?: TunnelConfig): Promise<DaemonProcess> {
    const base = tempRoot('cvm-tunnel-');
    const root = join(base, 'root');
    if (tunnel) {
      mkdirSync(root);
      writeTunnel(root, tunnel);
    }
    const d = new DaemonProcess(base, root);
    t.after(async () => {
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
      await d.exited;
    });
    await until('the daemon socket', () => d.proc.exitCode === null && d.output.includes('serving'));
    return d;
  }

  async local(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const socket = await this.open();
    try {
      return await request(socket, method, params);
    } finally {
      socket.destroy();
    }
  }

  /** Holds a conversation's TUI (so messages queue instead of starting the agent) until the socket is closed. */
  async holdTui(id: string): Promise<Socket> {
    const socket = await this.open();
    await request(socket, 'conversation.tui', { id });
    return socket;
  }

  private open(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(join(this.root, 'daemon.sock'), () => resolve(s)).once('error', reject);
    });
  }
}

function request(socket: Socket, method: string, params: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n').slice(0, -1)) {
        const m = JSON.parse(line) as { result?: unknown; error?: { message: string } };
        socket.off('data', onData);
        return m.error ? reject(new Error(m.error.message)) : resolve(m.result);
      }
    };
    socket.on('data', onData);
    socket.write(JSON.stringify({ id: 1, method, params }) + '\n');
  });
}

/** As the control plane would: a private file, swapped in whole. */
function writeTunnel(root: string, config: TunnelConfig): void {
  const tmp = join(root, 'tunnel.json.tmp');
  writeFileSync(tmp, JSON.stringify(config), { mode: 0o600 });
  if (asNobody) chownSync(tmp, 65534, 65534);
  renameSync(tmp, join(root, 'tunnel.json'));
}

/** Queues and cancels `pairs` messages: two events each, and no agent starts (the TUI is held). */
async function queueAndCancel(call: (method: string, params: Record<string, unknown>) => Promise<any>, id: string, pairs: number): Promise<void> {
  for (let i = 0; i < pairs; i++) {
    const { queueId } = await call('conversation.send', { id, text: `message ${i}` });
    await call('conversation.cancel', { id, queueId });
  }
}

const eventsOf = (conn: Connection, id: string) => conn.events.filter((e) => e.conversationId === id);

test('events arrive in order, once each; RPCs round trip; a conversation created later streams too', { timeout: TIMEOUT }, async (t) => {
  const cp = await ControlPlane.start('tok-a-1f9c');
  t.after(() => cp.close());
  const d = await DaemonProcess.start(t, { url: cp.url, token: cp.token });
  await until('the hello', () => !!cp.live?.welcome);
  const conn = cp.live!;
  assert.equal(conn.hello!.workspaceId, 'w1');
  assert.deepEqual(conn.hello!.conversations, []);

  const ping = await cp.result('ping');
  assert.equal(ping.workspaceId, 'w1');
  assert.equal(ping.version, conn.hello!.version);

  const created = (await cp.result('conversation.create', { agent: 'claude' })) as ConversationInfo;
  assert.equal(created.lastSeq, 1);
  // The events a request caused reach the control plane before its answer.
  assert.deepEqual(eventsOf(conn, created.id).map((e) => e.type), ['conversation.created']);
  const tui = await d.holdTui(created.id);
  await queueAndCancel((m, p) => cp.result(m, p), created.id, 5);
  tui.destroy();
  const n = 1 + 1 + 10 + 1;
  await until('the summary after the last event', () => cp.infos.get(created.id)?.lastSeq === n && cp.infos.get(created.id)?.state === 'idle');

  const events = eventsOf(conn, created.id);
  assert.deepEqual(events.map((e) => e.seq), range(1, n));
  assert.deepEqual(events.map((e) => e.type), [
    'conversation.created', 'tui.attached', ...Array(5).fill(['message.queued', 'message.cancelled']).flat(), 'tui.detached',
  ]);
  assert.deepEqual(cp.seqs(created.id), range(1, n));

  const second = (await cp.result('conversation.create', { agent: 'claude' })) as ConversationInfo;
  assert.deepEqual(eventsOf(conn, second.id).map((e) => e.seq), [1]);
  const list = (await cp.result('conversation.list')) as ConversationInfo[];
  assert.deepEqual(list.map((c) => c.id).sort(), [created.id, second.id].sort());
  assert.equal(((await cp.result('conversation.get', { id: created.id })) as ConversationInfo).lastSeq, n);

  // Errors come back as res.error; what needs the local connection is refused.
  assert.match((await cp.req('nope')).error?.message ?? '', /Unknown method nope/);
  assert.match((await cp.req('conversation.get', { id: 'c_nothere' })).error?.message ?? '', /No conversation/);
  assert.ok((await cp.req('conversation.tui', { id: created.id })).error);
  assert.ok((await cp.req('events.read', { id: created.id })).error);
  assert.equal(cp.connections.length, 1);
  assert.equal(d.proc.exitCode, null);
});

test('after a dropped connection the daemon resends from welcome.acked + 1: the store ends gap-free', { timeout: TIMEOUT }, async (t) => {
  const cp = await ControlPlane.start('tok-b-77d2');
  t.after(() => cp.close());
  const d = await DaemonProcess.start(t, { url: cp.url, token: cp.token });
  await until('the hello', () => !!cp.live?.welcome);
  const first = cp.live!;
  const { id } = (await cp.result('conversation.create', { agent: 'claude' })) as ConversationInfo;
  const tui = await d.holdTui(id);
  await queueAndCancel((m, p) => cp.result(m, p), id, 2);
  await until('events 1-6 stored', () => cp.seqs(id).length === 6);

  // Events 7-12 reach the server but are never stored: the connection dies before it acknowledges them.
  cp.holdAcks = true;
  await queueAndCancel((m, p) => cp.result(m, p), id, 3);
  await until('events 7-12 received', () => eventsOf(first, id).length === 12);
  cp.holdAcks = false;
  cp.kill();
  // And more while the tunnel is down (or coming back): through the local socket.
  await queueAndCancel((m, p) => d.local(m, p), id, 1);
  tui.destroy();
  const n = 15;
  await until('all events stored', () => cp.seqs(id).length === n && cp.infos.get(id)?.lastSeq === n);

  assert.deepEqual(eventsOf(first, id).map((e) => e.seq), range(1, 12));
  const second = cp.connections[1]!;
  assert.equal(cp.connections.length, 2);
  assert.equal(second.welcome![id], 6);
  assert.deepEqual(second.hello!.conversations.map((c) => c.id), [id]);
  assert.deepEqual(eventsOf(second, id).map((e) => e.seq), range(7, n));
  assert.deepEqual(cp.seqs(id), range(1, n));
  assert.deepEqual([...cp.stored.get(id)!.values()].map((e) => e.type).slice(-3), ['message.queued', 'message.cancelled', 'tui.detached']);
});

test('events a control plane acknowledged and then lost (a power cut before its disk caught up) come back from the daemon', { timeout: TIMEOUT }, async (t) => {
  const cp = await ControlPlane.start('tok-p-5e01');
  t.after(() => cp.close());
  const d = await DaemonProcess.start(t, { url: cp.url, token: cp.token });
  await until('the hello', () => !!cp.live?.welcome);
  const { id } = (await cp.result('conversation.create', { agent: 'claude' })) as ConversationInfo;
  const tui = await d.holdTui(id);
  await queueAndCancel((m, p) => cp.result(m, p), id, 3);
  await until('events 1-8 stored and acknowledged', () => cp.seqs(id).length === 8);

  // The store loses what it had acknowledged after event 3 (commits that never reached its disk), and restarts.
  for (const seq of [4, 5, 6, 7, 8]) cp.stored.get(id)!.delete(seq);
  cp.kill();
  await until('the reconnect', () => cp.connections.length === 2 && !!cp.connections[1]!.welcome);
  assert.equal(cp.connections[1]!.welcome![id], 3);
  await until('the lost events resent', () => cp.seqs(id).length === 8);
  assert.deepEqual(cp.seqs(id), range(1, 8));
  assert.deepEqual(eventsOf(cp.connections[1]!, id).map((e) => e.seq), range(4, 8), 'only what was lost, nothing twice');
  tui.destroy();
});

test('without tunnel.json the daemon serves locally; a control plane that is not up yet is reached once it is', { timeout: TIMEOUT }, async (t) => {
  const d = await DaemonProcess.start(t);
  assert.equal((await d.local('ping')).workspaceId, 'w1');
  const { id } = (await d.local('conversation.create', { agent: 'claude' })) as ConversationInfo;

  const socketPath = join(d.base, 'cp.sock');
  writeTunnel(d.root, { url: `unix:${socketPath}`, token: 'tok-c-0b31' });
  await until('a failed attempt', () => d.output.includes('could not connect'));
  const cp = await ControlPlane.start('tok-c-0b31', socketPath);
  t.after(() => cp.close());
  await until('the hello', () => !!cp.live?.welcome);
  assert.deepEqual(cp.live!.hello!.conversations.map((c) => c.id), [id]);
  await until('the conversation stored', () => cp.seqs(id).length === 1);
  assert.equal((await cp.result('ping')).workspaceId, 'w1');
});

test('a refused token does not stop the daemon; a rewritten tunnel.json connects; SIGTERM closes cleanly', { timeout: TIMEOUT }, async (t) => {
  const cp = await ControlPlane.start('tok-d-good-5e0a');
  t.after(() => cp.close());
  const d = await DaemonProcess.start(t, { url: cp.url, token: 'tok-d-bad-93c4' });
  await until('a refusal', () => cp.refused >= 1);
  assert.equal((await d.local('ping')).workspaceId, 'w1');
  assert.equal(cp.connections.length, 0);

  writeTunnel(d.root, { url: cp.url, token: cp.token });
  await until('the hello', () => !!cp.live?.welcome);
  const conn = cp.live!;
  d.proc.kill('SIGTERM');
  assert.equal(await d.exited, 0);
  await until('the close', () => conn.closeCode !== undefined);
  assert.equal(conn.closeCode, 1001);
  assert.ok(!d.output.includes('tok-d-'), 'the log never shows a token');
});
