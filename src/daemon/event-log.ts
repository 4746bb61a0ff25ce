/**
 * @module Append-only event log of one conversation: JSON lines on the workspace volume. An event is written
 * (and flushed to the OS) before any subscriber sees it, so a reader that reconnects from `seq` n misses nothing.
 *
 * Memory stays flat however long the history: the log keeps its newest events and the file offset of every
 * INDEX_EVERY-th one; older events are read back from the file when a client asks for them.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, writeFileSync } from 'node:fs';
import type { AnyEvent, EventPayloads, EventType } from '../protocol/events.js';

export type Listener = (e: AnyEvent) => void;

/** One offset per this many events: 64 events of a few hundred bytes each are read to reach any one. */
const INDEX_EVERY = 64;
/** Live followers and reconnecting clients mostly ask for the last few events: those never touch the file. */
const TAIL = 256;
const BLOCK = 1 << 20;

export class EventLog {
  private count = 0;
  /** Bytes of whole events in the file. */
  private size = 0;
  /** index[i] is the byte offset of event i × INDEX_EVERY + 1. */
  private readonly index: number[] = [];
  /** The newest events, oldest first; seq of tail[0] is count - tail.length + 1. */
  private tail: AnyEvent[] = [];
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly file: string,
    private readonly conversationId: string,
  ) {
    if (!existsSync(file)) writeFileSync(file, '');
    this.load();
  }

  get lastSeq(): number {
    return this.count;
  }

  append<T extends EventType>(type: T, data: EventPayloads[T]): AnyEvent {
    const e = { seq: this.count + 1, time: new Date().toISOString(), conversationId: this.conversationId, type, data } as AnyEvent;
    const line = JSON.stringify(e) + '\n';
    appendFileSync(this.file, line);
    this.remember(e, Buffer.byteLength(line));
    for (const l of this.listeners) l(e);
    return e;
  }

  /**
   * Events with seq ≥ from (1-based) up to the last one at the time of the call, read lazily (older ones from
   * the file, a block at a time). Iterating it without awaiting in between sees exactly the events appended
   * before the call, so a replay followed by `subscribe` neither loses nor repeats one.
   */
  read(from = 1): Iterable<AnyEvent> {
    const end = this.count;
    const first = Math.max(1, from);
    if (first > end) return [];
    const tailStart = end - this.tail.length + 1;
    if (first >= tailStart) return this.tail.slice(first - tailStart);
    const slot = Math.floor((first - 1) / INDEX_EVERY);
    return this.fromFile(first, end, slot * INDEX_EVERY + 1, this.index[slot]!, this.size);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private remember(e: AnyEvent, bytes: number): void {
    if (this.count % INDEX_EVERY === 0) this.index.push(this.size);
    this.count++;
    this.size += bytes;
    this.tail.push(e);
    if (this.tail.length >= 2 * TAIL) this.tail = this.tail.slice(-TAIL); // trimmed in batches: no shift per event
  }

  private *fromFile(first: number, end: number, seqAt: number, offset: number, size: number): Generator<AnyEvent> {
    const fd = openSync(this.file, 'r');
    try {
      let seq = seqAt;
      for (const { line } of lines(fd, offset, size)) {
        if (seq >= first) yield JSON.parse(line) as AnyEvent;
        if (++seq > end) return;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Reads the file back; a torn last line (the daemon killed mid-write) is cut off so numbering stays gap-free. */
  private load(): void {
    const fd = openSync(this.file, 'r+');
    try {
      const total = fstatSync(fd).size;
      for (const { line, bytes } of lines(fd, 0, total)) {
        let e: AnyEvent;
        try {
          e = JSON.parse(line) as AnyEvent;
        } catch {
          break;
        }
        if (e.seq !== this.count + 1) break;
        this.remember(e, bytes);
      }
      if (this.size < total) ftruncateSync(fd, this.size);
    } finally {
      closeSync(fd);
    }
  }
}

/** The newline-terminated lines of the file between two offsets (an unterminated last one is left out). */
function* lines(fd: number, start: number, end: number): Generator<{ line: string; bytes: number }> {
  let pos = start;
  let carry: Buffer[] = [];
  let carried = 0;
  const block = Buffer.allocUnsafe(BLOCK);
  while (pos < end) {
    const n = readSync(fd, block, 0, Math.min(BLOCK, end - pos), pos);
    if (!n) return;
    pos += n;
    let from = 0;
    for (let nl = block.indexOf(10, 0); nl >= 0 && nl < n; nl = block.indexOf(10, from)) {
      const piece = block.subarray(from, nl);
      const whole = carried ? Buffer.concat([...carry, piece]) : piece;
      yield { line: whole.toString('utf8'), bytes: whole.length + 1 };
      carry = [];
      carried = 0;
      from = nl + 1;
    }
    if (from < n) {
      carry.push(Buffer.from(block.subarray(from, n))); // a line longer than what is left of the block
      carried += n - from;
    }
  }
}
