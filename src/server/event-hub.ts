/**
 * @module Events from workspace tunnels to viewers. Ingest batches writes from every tunnel into one transaction
 * (so thousands of daemons cost a few commits a second), then publishes to subscribers. A viewer reads the
 * store from its sequence number, then follows live; anything it missed in between it reads back from the
 * store, so it never sees a gap or a duplicate.
 */
import type { AnyEvent } from '../protocol/events.js';
import type { EventStore } from '../store/events.js';
import type { EventFeed } from '../core/conversations.js';

/** null: new events exist (stored by another process); read them from the store. */
type Listener = (e: AnyEvent | null) => void;

/** Key of a conversation in one workspace (ids are only unique within a workspace as far as trust goes). */
const key = (workspaceId: string, conversationId: string) => `${workspaceId}\u0000${conversationId}`;

export class EventHub implements EventFeed {
  private readonly listeners = new Map<string, Set<Listener>>();
  private queue: Array<{ workspaceId: string; events: AnyEvent[]; done: (e?: Error) => void }> = [];
  private flushing = false;
  /** Called with a workspace id whenever it produced events (idle tracking). */
  onActivity: (workspaceId: string) => void = () => undefined;
  /** Everyone who wants every stored event (notifications, live dashboards). */
  readonly stored = new Set<(workspaceId: string, e: AnyEvent) => void>();
  /** Other control-plane processes on the same database learn of new events through this (PostgreSQL NOTIFY). */
  onPublished: (workspaceId: string, conversationId: string, seq: number) => void = () => undefined;

  constructor(private readonly store: EventStore) {}

  /** Stores a workspace's events durably; resolves once they are committed (then they may be acknowledged). */
  ingest(workspaceId: string, events: AnyEvent[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ workspaceId, events, done: (e) => (e ? reject(e) : resolve()) });
      // On the next turn of the event loop, so frames from many tunnels arriving together share one transaction
      // (SQLite commits synchronously: started at once, every frame would get its own).
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length) {
        // Everything that arrived while the last commit ran goes into the next one.
        const batch = this.queue;
        this.queue = [];
        const byWorkspace = new Map<string, AnyEvent[]>();
        for (const b of batch) {
          const list = byWorkspace.get(b.workspaceId);
          if (list) list.push(...b.events);
          else byWorkspace.set(b.workspaceId, [...b.events]);
        }
        try {
          await this.store.appendMany([...byWorkspace].map(([workspaceId, events]) => ({ workspaceId, events })));
        } catch (e) {
          for (const b of batch) b.done(e as Error);
          continue;
        }
        for (const b of batch) {
          for (const e of b.events) this.publish(b.workspaceId, e);
          this.onActivity(b.workspaceId);
          b.done();
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private publish(workspaceId: string, e: AnyEvent): void {
    for (const l of this.listeners.get(key(workspaceId, e.conversationId)) ?? []) l(e);
    for (const l of this.stored) l(workspaceId, e);
    this.onPublished(workspaceId, e.conversationId, e.seq);
  }

  /** Another process stored events up to `seq`: wake local followers, who read them from the store. */
  remotePublished(workspaceId: string, conversationId: string, seq: number): void {
    void seq;
    for (const l of this.listeners.get(key(workspaceId, conversationId)) ?? []) l(null);
  }

  subscribe(workspaceId: string, conversationId: string, l: Listener): () => void {
    const k = key(workspaceId, conversationId);
    let set = this.listeners.get(k);
    if (!set) this.listeners.set(k, (set = new Set()));
    set.add(l);
    return () => {
      set!.delete(l);
      if (!set!.size) this.listeners.delete(k);
    };
  }

  get viewerCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  async read(workspaceId: string, conversationId: string, opts: { from: number; follow: boolean; onEvent: (e: AnyEvent) => void; signal?: AbortSignal }): Promise<void> {
    let next = opts.from;
    const catchUp = async () => {
      for (;;) {
        const page = await this.store.read(workspaceId, conversationId, next, 1000);
        for (const e of page) {
          if (e.seq !== next) return; // a hole: the rest is still on its way
          opts.onEvent(e);
          next++;
        }
        if (page.length < 1000) return;
      }
    };
    if (!opts.follow) return catchUp();
    // Live events that arrive in order are delivered directly; anything out of order (or a remote hint) makes the
    // follower read the store again. Reads never overlap: one runs at a time, and a hint during it schedules another.
    let reading: Promise<void> | undefined;
    let again = false;
    let retry: NodeJS.Timeout | undefined;
    let closed = false;
    const refill = (): void => {
      if (closed) return;
      if (reading) {
        again = true;
        return;
      }
      clearTimeout(retry);
      reading = catchUp()
        // A read that failed (the database busy or restarting) is tried again: the events it missed may be the
        // last of the turn, and no later event would come to wake this follower.
        .catch(() => void (retry = setTimeout(refill, 1000)))
        .finally(() => {
          reading = undefined;
          if (again) {
            again = false;
            refill();
          }
        });
    };
    const unsubscribe = this.subscribe(workspaceId, conversationId, (e) => {
      if (reading || !e || e.seq > next) return refill();
      if (e.seq < next) return;
      opts.onEvent(e);
      next++;
    });
    refill();
    await new Promise<void>((resolve) => {
      if (opts.signal?.aborted) return resolve();
      opts.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    closed = true;
    clearTimeout(retry);
    unsubscribe();
  }
}
