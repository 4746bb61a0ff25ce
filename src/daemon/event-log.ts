/**
 * @module Append-only event log of one conversation: JSON lines on the workspace volume. An event is written
 * (and flushed to the OS) before any subscriber sees it, so a reader that reconnects from `seq` n misses nothing.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync, truncateSync } from 'node:fs';
import type { AnyEvent, EventPayloads, EventType } from '../protocol/events.js';

export type Listener = (e: AnyEvent) => void;

export class EventLog {
  private events: AnyEvent[] = [];
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly file: string,
    private readonly conversationId: string,
  ) {
    if (!existsSync(file)) writeFileSync(file, '');
    this.load();
  }

  get lastSeq(): number {
    return this.events.length;
  }

  append<T extends EventType>(type: T, data: EventPayloads[T]): AnyEvent {
    const e = { seq: this.events.length + 1, time: new Date().toISOString(), conversationId: this.conversationId, type, data } as AnyEvent;
    appendFileSync(this.file, JSON.stringify(e) + '\n');
    this.events.push(e);
    for (const l of this.listeners) l(e);
    return e;
  }

  /** Events with seq ≥ from (1-based). */
  read(from = 1): AnyEvent[] {
    return this.events.slice(Math.max(0, from - 1));
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Reads the file back; a torn last line (the daemon killed mid-write) is cut off so numbering stays gap-free. */
  private load(): void {
    const text = readFileSync(this.file, 'utf8');
    let good = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as AnyEvent;
        if (e.seq !== this.events.length + 1) break;
        this.events.push(e);
        good += Buffer.byteLength(line) + 1;
      } catch {
        break;
      }
    }
    if (good < Buffer.byteLength(text)) truncateSync(this.file, good);
  }
}
