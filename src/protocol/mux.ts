/**
 * @module Byte streams (SSH sessions, forwarded ports) multiplexed over the workspace tunnel. Data travels in
 * binary frames, `[stream id: uint32 BE][bytes]`; control travels as JSON (`MuxControl`). Flow control is by
 * credit: a sender keeps at most WINDOW unacknowledged bytes per stream, and the receiver returns credit as its
 * consumer takes the bytes, so one slow stream never fills the tunnel's memory or stalls the others.
 */
import { Duplex } from 'node:stream';

export const WINDOW = 2 * 1024 * 1024;
const FRAME = 256 * 1024;
/** Credit is returned in batches: one control message per this many bytes (or per turn of the event loop). */
const CREDIT_BATCH = 256 * 1024;

/** What a stream connects to inside the workspace. */
export type StreamTarget =
  /** An SSH server for the workspace user: sshd in inetd mode with these keys (never stored on the volume). */
  | { kind: 'ssh'; hostKey: string; authorizedKeys: string }
  /** A TCP port on the workspace's loopback. */
  | { kind: 'tcp'; port: number };

export type MuxControl =
  | { t: 'open'; sid: number; target: StreamTarget }
  | { t: 'opened'; sid: number }
  | { t: 'credit'; sid: number; bytes: number }
  | { t: 'eof'; sid: number }
  | { t: 'close'; sid: number; error?: string };

/**
 * Client options for our own WebSocket clients (the CLI, the daemon). Masking exists to protect proxies from
 * scripts in browsers; these clients run no foreign script, so a zero mask (which ws then skips) saves a pass over
 * every byte of a file transfer. No compression: the payloads are encrypted SSH or already-compact JSON.
 */
export const FAST_CLIENT = { generateMask: (mask: Buffer) => void mask.fill(0), perMessageDeflate: false } as const;

export const MUX_TYPES = new Set(['open', 'opened', 'credit', 'eof', 'close']);

export interface MuxIo {
  json(m: MuxControl): void;
  binary(frame: Buffer): void;
}

export class MuxStream extends Duplex {
  private inFlight = 0;
  private blocked: ((e?: Error | null) => void) | undefined;
  private credit = 0;
  private creditQueued = false;
  private held = 0;
  /** The peer closed the stream (no close message goes back). */
  remoteClosed = false;

  constructor(
    private readonly mux: Mux,
    readonly sid: number,
  ) {
    super({ allowHalfOpen: true });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    for (let i = 0; i < chunk.length; i += FRAME) {
      const part = chunk.subarray(i, i + FRAME);
      const frame = Buffer.allocUnsafe(4 + part.length);
      frame.writeUInt32BE(this.sid, 0);
      part.copy(frame, 4);
      this.mux.io.binary(frame);
    }
    this.inFlight += chunk.length;
    // The write completes when the peer has room again: that is the backpressure a piped source feels.
    if (this.inFlight < WINDOW) done();
    else this.blocked = done;
  }

  override _final(done: (e?: Error | null) => void): void {
    this.mux.io.json({ t: 'eof', sid: this.sid });
    done();
  }

  override _read(): void {
    // The consumer wants more: what was held back is now consumed, so its credit can go back.
    if (this.held) {
      this.grant(this.held);
      this.held = 0;
    }
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    if (!this.remoteClosed) this.mux.io.json({ t: 'close', sid: this.sid, ...(e ? { error: e.message } : {}) });
    this.mux.forget(this.sid);
    const blocked = this.blocked;
    this.blocked = undefined;
    blocked?.(e ?? new Error('stream closed'));
    done(e);
  }

  /** Bytes from the peer. */
  deliver(data: Buffer): void {
    if (this.push(data)) this.grant(data.length);
    else this.held += data.length;
  }

  /** The peer consumed `bytes` of ours. */
  credited(bytes: number): void {
    this.inFlight -= bytes;
    if (this.blocked && this.inFlight < WINDOW) {
      const go = this.blocked;
      this.blocked = undefined;
      go();
    }
  }

  private grant(bytes: number): void {
    this.credit += bytes;
    if (this.credit >= CREDIT_BATCH) return this.flushCredit();
    if (!this.creditQueued) {
      this.creditQueued = true;
      setImmediate(() => this.flushCredit());
    }
  }

  private flushCredit(): void {
    this.creditQueued = false;
    if (!this.credit || this.destroyed) return;
    this.mux.io.json({ t: 'credit', sid: this.sid, bytes: this.credit });
    this.credit = 0;
  }
}

export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  private nextSid = 1;

  constructor(readonly io: MuxIo) {}

  /** A new stream with a fresh id (the side that opens streams allocates ids). */
  create(): MuxStream {
    return this.adopt(this.nextSid++);
  }

  /** A stream whose id the peer chose. */
  adopt(sid: number): MuxStream {
    const s = new MuxStream(this, sid);
    s.on('error', () => undefined);
    this.streams.set(sid, s);
    return s;
  }

  get(sid: number): MuxStream | undefined {
    return this.streams.get(sid);
  }

  forget(sid: number): void {
    this.streams.delete(sid);
  }

  onBinary(frame: Buffer): void {
    if (frame.length < 4) return;
    this.streams.get(frame.readUInt32BE(0))?.deliver(frame.subarray(4));
  }

  /** Handles credit, eof and close; open and opened are the caller's (they need a target). */
  onControl(m: MuxControl): void {
    const s = this.streams.get(m.sid);
    if (!s) return;
    if (m.t === 'credit') s.credited(m.bytes);
    else if (m.t === 'eof') s.push(null);
    else if (m.t === 'close') {
      s.remoteClosed = true;
      s.destroy(m.error ? new Error(m.error) : undefined);
    }
  }

  /** The tunnel went away: every stream ends. */
  closeAll(why: string): void {
    for (const s of [...this.streams.values()]) {
      s.remoteClosed = true;
      s.destroy(new Error(why));
    }
  }
}
