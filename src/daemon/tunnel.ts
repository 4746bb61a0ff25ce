/**
 * @module The daemon's end of the control-plane tunnel (src/protocol/tunnel.ts). The daemon dials out, says what
 * it holds, streams every conversation's events after what the control plane has acknowledged, answers its RPCs,
 * and redials forever. The event logs stay the source of truth, so a dropped connection only costs a resend.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { AnyEvent } from '../protocol/events.js';
import { tunnelWsUrl, type DaemonMessage, type ServerMessage, type TunnelConfig } from '../protocol/tunnel.js';
import type { Conversation } from './conversation.js';
import type { Duplex } from 'node:stream';
import { Mux, MUX_TYPES, type MuxControl, type StreamTarget } from '../protocol/mux.js';
import { WsClient } from './ws-client.js';

/** What the tunnel needs of a conversation. */
export type TunnelConversation = Pick<Conversation, 'info' | 'log'>;

/** The answer to one RPC: what the unix socket would have sent as its final line. */
export interface RpcReply {
  result?: unknown;
  error?: { message: string; code?: string };
}

export interface TunnelHost {
  /** Holds tunnel.json, written by the control plane. */
  root: string;
  workspaceId: string;
  version: string;
  conversations(): Iterable<TunnelConversation>;
  call(method: string, params: Record<string, unknown>): Promise<RpcReply>;
  /** A byte stream the control plane asked for (SSH, a forwarded port). */
  openStream(target: StreamTarget): Promise<Duplex>;
}

const BATCH = 256;
const FIRST_DELAY = 250;
const MAX_DELAY = 10_000;
/** Until the control plane has written tunnel.json (or while it is unusable). */
const NO_CONFIG_DELAY = 3_000;
/** After tunnel.json changed: give the writer a moment to finish. */
const CONFIG_CHANGED_DELAY = 100;
const HEARTBEAT = 15_000;
const INFO_COALESCE = 100;

export class TunnelClient {
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private conn: Connection | undefined;
  /** tunnel.json changed since the current attempt read it. */
  private configChanged = false;
  private lastLog = '';
  /** The highest sequence the control plane has stored, per conversation (for a future log trim). */
  readonly acked = new Map<string, number>();

  constructor(private readonly host: TunnelHost) {}

  start(): void {
    try {
      // A new tunnel.json (first one, or a new token after a refusal) is worth trying at once, not after the backoff.
      this.watcher = watch(this.host.root, (_e, name) => {
        if (name !== 'tunnel.json') return;
        this.configChanged = true;
        if (!this.conn && !this.stopped) this.schedule(CONFIG_CHANGED_DELAY);
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // No inotify: the retry timers alone still get there.
    }
    this.connect();
  }

  /** A conversation created while connected: stream it too (the hello/welcome cover the others). */
  added(c: TunnelConversation): void {
    this.conn?.add(c);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    await this.conn?.close();
  }

  private connect(): void {
    this.timer = undefined;
    if (this.stopped) return;
    this.configChanged = false;
    let config: TunnelConfig;
    let ws: WsClient;
    try {
      config = readConfig(join(this.host.root, 'tunnel.json'));
      ws = new WsClient(tunnelWsUrl(config.url), { headers: { Authorization: `Bearer ${config.token}` }, handshakeTimeout: 10_000 });
    } catch (e) {
      this.log(`tunnel: ${(e as Error).message}; retrying later`);
      return this.schedule(NO_CONFIG_DELAY);
    }
    this.conn = new Connection(ws, this.host, {
      opened: () => this.log(`tunnel: connected to ${config.url}`),
      welcomed: () => (this.attempt = 0),
      acked: (acked) => {
        for (const [id, seq] of Object.entries(acked)) if (seq > (this.acked.get(id) ?? 0)) this.acked.set(id, seq);
      },
      closed: (conn, why) => this.closed(conn, config.url, why),
    });
  }

  private closed(conn: Connection, url: string, why: string): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.stopped) return this.log(`tunnel: closed (${why})`);
    // A refused token will not get better by retrying quickly; a rewritten tunnel.json might.
    const delay = this.configChanged ? CONFIG_CHANGED_DELAY : conn.refused === 401 || conn.refused === 403 ? jitter(MAX_DELAY) : jitter(Math.min(MAX_DELAY, FIRST_DELAY * 2 ** Math.min(this.attempt++, 16)));
    this.log(`tunnel: ${conn.opened ? 'disconnected from' : 'could not connect to'} ${url} (${why}); retrying`);
    this.schedule(delay);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), ms);
  }

  /** One line per change: a control plane that stays down does not fill daemon.log with the same failure. */
  private log(line: string): void {
    if (line === this.lastLog) return;
    this.lastLog = line;
    process.stderr.write(`claude-vm-daemon: ${line}\n`);
  }
}

interface ConnectionEvents {
  opened(): void;
  welcomed(): void;
  acked(acked: Record<string, number>): void;
  closed(conn: Connection, why: string): void;
}

/** One WebSocket, from dial to close: the client makes a new one for every attempt, so no state leaks across. */
class Connection {
  opened = false;
  /** The HTTP status when the upgrade was refused. */
  refused: number | undefined;
  private failure: string | undefined;
  private welcomed = false;
  private acked: Record<string, number> = {};
  /** lastSeq per conversation as the hello described it. */
  private readonly announced = new Map<string, number>();
  private readonly following = new Map<string, () => void>();
  private readonly infoTimers = new Map<string, NodeJS.Timeout>();
  private outbox: AnyEvent[] = [];
  private flushQueued = false;
  private ponged = true;
  private readonly heartbeat: NodeJS.Timeout;
  /** SSH sessions and forwarded ports riding on this connection; they end with it. */
  private readonly mux: Mux;

  constructor(
    private readonly ws: WsClient,
    private readonly host: TunnelHost,
    events: ConnectionEvents,
  ) {
    ws.on('open', () => {
      this.opened = true;
      events.opened();
      const conversations = [...host.conversations()].map((c) => c.info());
      for (const i of conversations) this.announced.set(i.id, i.lastSeq);
      this.send({ t: 'hello', workspaceId: host.workspaceId, version: host.version, conversations });
    });
    this.mux = new Mux({
      json: (m) => this.send(m as DaemonMessage),
      binary: (frame) => ws.send(frame),
    });
    ws.on('message', (data, binary) => (binary ? this.mux.onBinary(data) : this.receive(String(data), events)));
    ws.on('pong', () => (this.ponged = true));
    ws.on('close', (_code, why) => {
      this.refused = ws.refused;
      this.dispose();
      events.closed(this, this.failure ?? why);
    });
    // A connection can die without a close (NAT timeout, suspended host): no pong since the last ping means dead.
    this.heartbeat = setInterval(() => {
      if (!ws.open) return;
      if (!this.ponged) {
        this.failure ??= 'no pong';
        return ws.terminate();
      }
      this.ponged = false;
      ws.ping();
    }, HEARTBEAT);
  }

  add(c: TunnelConversation): void {
    if (this.welcomed) this.follow(c);
  }

  close(): Promise<void> {
    if (this.ws.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.flush();
      this.ws.close(1001, 'workspace daemon stopping');
      setTimeout(() => this.ws.terminate(), 1_000).unref();
    });
  }

  private receive(text: string, events: ConnectionEvents): void {
    let m: ServerMessage;
    try {
      m = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    if (m.t === 'welcome') {
      // (A second welcome restarts the streams from its numbers.)
      this.stopFollowing();
      this.welcomed = true;
      this.acked = m.acked ?? {};
      for (const c of this.host.conversations()) this.follow(c);
      events.welcomed();
    } else if (m.t === 'ack') events.acked(m.acked ?? {});
    else if (m.t === 'req') void this.answer(m);
    else if (m.t === 'open') void this.open(m.sid, m.target);
    else if (MUX_TYPES.has(m.t)) this.mux.onControl(m as MuxControl);
  }

  private async open(sid: number, target: StreamTarget): Promise<void> {
    let local: Duplex;
    try {
      local = await this.host.openStream(target);
    } catch (e) {
      return this.send({ t: 'close', sid, error: (e as Error).message });
    }
    const remote = this.mux.adopt(sid);
    local.on('error', () => remote.destroy());
    remote.on('close', () => local.destroy());
    local.on('close', () => remote.destroy());
    local.pipe(remote);
    remote.pipe(local);
    this.send({ t: 'opened', sid });
  }

  /**
   * Replays what the control plane lacks, then streams live. Both happen in one synchronous step (the log appends
   * and notifies synchronously), so no event falls between them and none is sent twice.
   */
  private follow(c: TunnelConversation): void {
    const id = c.info().id;
    if (this.following.has(id)) return;
    for (const e of c.log.read((this.acked[id] ?? 0) + 1)) this.queue(e);
    this.following.set(id, c.log.subscribe((e) => {
      this.queue(e);
      this.touch(c);
    }));
    // New since the hello (or not in it at all): its summary there is stale or missing.
    if (this.announced.get(id) !== c.log.lastSeq) this.touch(c);
  }

  private async answer(m: Extract<ServerMessage, { t: 'req' }>): Promise<void> {
    const reply = await this.host.call(m.method, m.params ?? {}).catch((e: Error): RpcReply => ({ error: { message: e.message } }));
    // The events a request caused go out before its answer.
    this.flush();
    this.send({ t: 'res', id: m.id, ...reply });
  }

  /** Events go out in batches: one frame per burst rather than per event. */
  private queue(e: AnyEvent): void {
    this.outbox.push(e);
    if (this.outbox.length >= BATCH) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (!this.outbox.length) return;
    const events = this.outbox;
    this.outbox = [];
    this.send({ t: 'events', events });
  }

  /** The summary after a conversation's events, at most once per INFO_COALESCE (a streaming turn emits many). */
  private touch(c: TunnelConversation): void {
    const id = c.info().id;
    if (this.infoTimers.has(id)) return;
    this.infoTimers.set(id, setTimeout(() => {
      this.infoTimers.delete(id);
      this.flush();
      this.send({ t: 'conversation', info: c.info() });
    }, INFO_COALESCE));
  }

  private send(m: DaemonMessage): void {
    this.ws.send(JSON.stringify(m));
  }

  private stopFollowing(): void {
    this.following.forEach((unsubscribe) => unsubscribe());
    this.following.clear();
    this.infoTimers.forEach((t) => clearTimeout(t));
    this.infoTimers.clear();
    this.outbox = [];
  }

  private dispose(): void {
    clearInterval(this.heartbeat);
    this.mux.closeAll('the tunnel closed');
    this.stopFollowing();
  }
}

/** Reads and checks tunnel.json; its messages never quote the file, which holds the token. */
function readConfig(file: string): TunnelConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no tunnel.json yet' : `tunnel.json is unreadable (${(e as NodeJS.ErrnoException).code})`);
  }
  let c: Partial<TunnelConfig>;
  try {
    c = JSON.parse(text) as Partial<TunnelConfig>;
  } catch {
    throw new Error('tunnel.json is not valid JSON');
  }
  if (typeof c?.url !== 'string' || typeof c.token !== 'string' || !c.url || !c.token) throw new Error('tunnel.json lacks url or token');
  return { url: c.url, token: c.token };
}

/** Between half and all of `ms`: daemons cut off together do not all redial at the same instant. */
function jitter(ms: number): number {
  return ms / 2 + (Math.random() * ms) / 2;
}
