/**
 * @module The control plane's end of workspace tunnels. Each workspace daemon holds one WebSocket; through it the
 * control plane calls the daemon and receives its events, which it stores and then acknowledges. A newer
 * connection for the same workspace replaces an older one (the daemon reconnected before the old one timed out).
 */
import type { WebSocket } from 'ws';
import { UserError } from '../protocol/errors.js';
import type { AnyEvent, ConversationInfo } from '../protocol/events.js';
import type { DaemonMessage, ServerMessage } from '../protocol/tunnel.js';
import type { EventStore } from '../store/events.js';
import type { StateStore } from '../store/state.js';
import type { EventHub } from './event-hub.js';
import { Mux, type MuxStream, type StreamTarget } from '../protocol/mux.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class TunnelSession {
  version = '';
  /** Highest seq stored without a gap, per conversation: what we acknowledge and what a resend starts after. */
  readonly acked = new Map<string, number>();
  readonly pending = new Map<number, Pending>();
  /** Batches are stored one after another, so acknowledgements advance in order. */
  chain: Promise<void> = Promise.resolve();
  readonly states = new Map<string, ConversationInfo['state']>();
  nextId = 1;
  welcomed = false;
  readonly mux: Mux;
  /** Streams asked for and not yet opened or refused by the daemon. */
  readonly opening = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(
    readonly workspaceId: string,
    readonly ws: WebSocket,
  ) {
    this.mux = new Mux({
      json: (m) => this.send(m as ServerMessage),
      binary: (frame) => ws.readyState === ws.OPEN && ws.send(frame, { binary: true }),
    });
  }

  send(m: ServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(m));
  }
}

export class TunnelHub {
  private readonly sessions = new Map<string, TunnelSession>();
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Team mode: other processes learn which one holds a workspace's tunnel. */
  onConnected: (workspaceId: string) => Promise<void> = async () => undefined;
  onDisconnected: (workspaceId: string) => Promise<void> = async () => undefined;
  /** A conversation's summary changed (live dashboards). */
  onConversation: (workspaceId: string, info: ConversationInfo) => void = () => undefined;

  constructor(
    private readonly store: StateStore,
    private readonly events: EventStore,
    private readonly hub: EventHub,
  ) {}

  /** A daemon connected with a valid tunnel token for `workspaceId`. */
  attach(workspaceId: string, ws: WebSocket): void {
    const session = new TunnelSession(workspaceId, ws);
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) return session.mux.onBinary(data);
      let m: DaemonMessage;
      try {
        m = JSON.parse(data.toString()) as DaemonMessage;
      } catch {
        return ws.close(1003, 'not JSON');
      }
      this.onMessage(session, m).catch(() => ws.terminate());
    });
    ws.on('close', () => this.detach(session));
    ws.on('error', () => ws.terminate());
  }

  private async onMessage(s: TunnelSession, m: DaemonMessage): Promise<void> {
    switch (m.t) {
      case 'hello': {
        if (m.workspaceId !== s.workspaceId) return s.ws.close(1008, 'this token is for another workspace');
        s.version = m.version;
        const stored = await this.events.lastSeqs(s.workspaceId);
        for (const [c, seq] of Object.entries(stored)) s.acked.set(c, seq);
        for (const info of m.conversations) await this.remember(s, info);
        this.sessions.get(s.workspaceId)?.ws.close(4000, 'replaced by a newer connection');
        this.sessions.set(s.workspaceId, s);
        s.welcomed = true;
        await this.onConnected(s.workspaceId).catch(() => undefined);
        s.send({ t: 'welcome', acked: Object.fromEntries(s.acked) });
        for (const w of this.waiters.get(s.workspaceId) ?? []) w();
        return;
      }
      case 'events': {
        if (!s.welcomed) return;
        const events = m.events.filter((e) => typeof e.conversationId === 'string' && Number.isInteger(e.seq) && e.seq > 0);
        s.chain = s.chain.then(() => this.store_(s, events));
        return s.chain;
      }
      case 'conversation':
        if (s.welcomed) await this.remember(s, m.info);
        return;
      case 'opened':
        s.opening.get(m.sid)?.resolve();
        s.opening.delete(m.sid);
        return;
      case 'close':
        if (s.opening.has(m.sid)) {
          s.opening.get(m.sid)!.reject(new UserError('wrong_state', m.error ?? 'The workspace refused the connection.'));
          s.opening.delete(m.sid);
        }
        s.mux.onControl(m);
        return;
      case 'credit':
      case 'eof':
        s.mux.onControl(m);
        return;
      case 'res': {
        const p = s.pending.get(m.id);
        if (!p) return;
        s.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.error) p.reject(new UserError(m.error.code === 'not_found' || m.error.code === 'forbidden' || m.error.code === 'wrong_state' ? m.error.code : 'invalid_argument', m.error.message));
        else p.resolve(m.result);
        return;
      }
    }
  }

  /** Stores a batch, then acknowledges the contiguous prefix of every conversation it touched. */
  private async store_(s: TunnelSession, events: AnyEvent[]): Promise<void> {
    const fresh = events.filter((e) => e.seq > (s.acked.get(e.conversationId) ?? 0));
    if (fresh.length) await this.hub.ingest(s.workspaceId, fresh);
    const touched = new Set<string>();
    for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
      const acked = s.acked.get(e.conversationId) ?? 0;
      if (e.seq === acked + 1) s.acked.set(e.conversationId, e.seq);
      touched.add(e.conversationId);
    }
    if (touched.size) s.send({ t: 'ack', acked: Object.fromEntries([...touched].map((c) => [c, s.acked.get(c) ?? 0])) });
  }

  /** Keeps the conversation's summary, so lists and idle checks work without asking the daemon. */
  private async remember(s: TunnelSession, info: ConversationInfo): Promise<void> {
    if (!info || typeof info.id !== 'string') return;
    s.states.set(info.id, info.state);
    await this.store.insertConversation({ id: info.id, workspaceId: s.workspaceId, agent: info.agent, info: { ...info, workspaceId: s.workspaceId } });
    await this.store.updateConversationInfo(s.workspaceId, { ...info, workspaceId: s.workspaceId });
    this.onConversation(s.workspaceId, { ...info, workspaceId: s.workspaceId });
  }

  private detach(s: TunnelSession): void {
    for (const p of s.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new UserError('provider_unavailable', 'The workspace disconnected during the request.', 'Try again; it reconnects by itself.'));
    }
    s.pending.clear();
    for (const o of s.opening.values()) o.reject(new UserError('provider_unavailable', 'The workspace disconnected.'));
    s.opening.clear();
    s.mux.closeAll('the workspace tunnel closed');
    if (this.sessions.get(s.workspaceId) === s) {
      this.sessions.delete(s.workspaceId);
      void this.onDisconnected(s.workspaceId).catch(() => undefined);
    }
  }

  connected(workspaceId: string): { version: string } | undefined {
    const s = this.sessions.get(workspaceId);
    return s ? { version: s.version } : undefined;
  }

  /** True once the workspace's daemon is connected (now or within `ms`). */
  async waitFor(workspaceId: string, ms: number, accept: (version: string) => boolean = () => true): Promise<boolean> {
    const ok = () => {
      const c = this.connected(workspaceId);
      return !!c && accept(c.version);
    };
    if (ok()) return true;
    return new Promise((resolve) => {
      let set = this.waiters.get(workspaceId);
      if (!set) this.waiters.set(workspaceId, (set = new Set()));
      const done = (v: boolean) => {
        clearTimeout(timer);
        set!.delete(check);
        resolve(v);
      };
      const check = () => ok() && done(true);
      const timer = setTimeout(() => done(false), ms);
      set.add(check);
    });
  }

  /** True when a conversation of this workspace is in a turn (or waiting for an approval, or in its TUI). */
  busy(workspaceId: string): boolean {
    const s = this.sessions.get(workspaceId);
    return !!s && [...s.states.values()].some((st) => st === 'working' || st === 'waiting-approval' || st === 'tui');
  }

  call(workspaceId: string, method: string, params: Record<string, unknown>, timeoutMs = 120_000): Promise<unknown> {
    const s = this.sessions.get(workspaceId);
    if (!s) return Promise.reject(new UserError('provider_unavailable', 'The workspace daemon is not connected.', 'Run `claude-vm workspace up <id>` to reconnect it.'));
    const id = s.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        s.pending.delete(id);
        reject(new UserError('provider_unavailable', `The workspace daemon did not answer ${method} in time.`));
      }, timeoutMs);
      s.pending.set(id, { resolve, reject, timer });
      s.send({ t: 'req', id, method, params });
    });
  }

  /** A byte stream to something in the workspace (its SSH server, a port), through its tunnel. */
  openStream(workspaceId: string, target: StreamTarget, timeoutMs = 30_000): Promise<MuxStream> {
    const s = this.sessions.get(workspaceId);
    if (!s) return Promise.reject(new UserError('provider_unavailable', 'The workspace daemon is not connected.', 'Run `claude-vm workspace up <id>` to reconnect it.'));
    const stream = s.mux.create();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        s.opening.delete(stream.sid);
        stream.destroy();
        reject(new UserError('provider_unavailable', 'The workspace did not open the connection in time.'));
      }, timeoutMs);
      s.opening.set(stream.sid, {
        resolve: () => (clearTimeout(timer), resolve(stream)),
        reject: (e) => {
          clearTimeout(timer);
          stream.remoteClosed = true;
          stream.destroy();
          reject(e);
        },
      });
      s.send({ t: 'open', sid: stream.sid, target });
    });
  }

  get count(): number {
    return this.sessions.size;
  }

  closeAll(): void {
    for (const s of this.sessions.values()) s.ws.terminate();
  }
}
