/**
 * @module The workspace daemon's WebSocket client (RFC 6455), just what its tunnel needs: dial (a unix socket, ws://
 * or wss://), text and binary messages, ping/pong, close. Not the `ws` package: importing it loads Node's http,
 * https, tls and zlib as well, about 7 MB of a process that idles in every workspace; this loads `tls` only for wss.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';

export interface WsClientOptions {
  headers?: Record<string, string>;
  /** Give up if the upgrade has not completed by then. */
  handshakeTimeout?: number;
  /** For wss: passed to tls.connect (the system and NODE_EXTRA_CA_CERTS roots apply by default). */
  tls?: ConnectionOptions;
}

export interface WsClientEvents {
  open: [];
  message: [data: Buffer, binary: boolean];
  pong: [];
  /** Always the last event, once: 1006 when the connection ended without a close frame; `why` says what happened. */
  close: [code: number, why: string];
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;
/** Far above any message the control plane sends (tunnel data frames are 256 KiB): a bound, not a limit in use. */
const MAX_MESSAGE = 256 << 20;
/**
 * The mask key clients must send. Masking exists to protect proxies from scripts in browsers; the daemon runs no
 * foreign script, so an all-zero key (a no-op XOR) spares a pass over every byte, as our `ws` clients do.
 */
const ZERO_MASK = Buffer.alloc(4);

type State = 'connecting' | 'open' | 'closing' | 'closed';

export class WsClient extends EventEmitter<WsClientEvents> {
  state: State = 'connecting';
  /** The HTTP status, when the server answered the upgrade with something other than 101. */
  refused: number | undefined;
  private socket: Socket | undefined;
  private readonly key = randomBytes(16).toString('base64');
  private pending: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentsBinary = false;
  private fragmentsLength = 0;
  private failure: string | undefined;
  private closeCode = 1006;
  private readonly handshakeTimer: NodeJS.Timeout | undefined;

  constructor(url: string, private readonly options: WsClientOptions = {}) {
    super();
    const target = parseUrl(url);
    if (options.handshakeTimeout) this.handshakeTimer = setTimeout(() => this.fail('the upgrade timed out'), options.handshakeTimeout);
    void this.dial(target).catch((e: Error) => this.fail(e.message));
  }

  get open(): boolean {
    return this.state === 'open';
  }

  /** A string goes as a text message, a Buffer as a binary one. False when the socket's buffer is full. */
  send(data: string | Buffer): boolean {
    if (this.state !== 'open') return false;
    return typeof data === 'string' ? this.frame(OP.text, Buffer.from(data)) : this.frame(OP.binary, data);
  }

  ping(): void {
    if (this.state === 'open') this.frame(OP.ping, Buffer.alloc(0));
  }

  /** Starts the closing handshake; the socket ends when the server answers it (or `terminate` ends it sooner). */
  close(code = 1000, reason = ''): void {
    if (this.state === 'connecting') return this.terminate();
    if (this.state !== 'open') return;
    this.state = 'closing';
    const body = Buffer.alloc(2 + Buffer.byteLength(reason));
    body.writeUInt16BE(code, 0);
    body.write(reason, 2);
    this.frame(OP.close, body);
  }

  /** Ends the connection now, without a closing handshake. */
  terminate(): void {
    this.socket?.destroy();
    if (!this.socket) this.finish();
  }

  private async dial(t: Target): Promise<void> {
    let socket: Socket;
    if (t.kind === 'unix') socket = connect(t.path);
    else if (t.secure) {
      const tls = await import('node:tls');
      socket = tls.connect({ host: t.host, port: t.port, servername: isIp(t.host) ? undefined : t.host, ALPNProtocols: ['http/1.1'], ...this.options.tls });
    } else socket = connect({ host: t.host, port: t.port });
    if (this.state === 'closed') return void socket.destroy(); // terminated while tls loaded
    this.socket = socket;
    socket.setNoDelay(true);
    const ready = t.kind === 'tcp' && t.secure ? 'secureConnect' : 'connect';
    socket.once(ready, () => {
      const headers = { Host: t.hostHeader, Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': this.key, 'Sec-WebSocket-Version': '13', ...this.options.headers };
      socket.write(`GET ${t.requestPath} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    });
    socket.on('data', (d: Buffer) => this.received(d));
    socket.on('error', (e) => (this.failure ??= e.message));
    socket.on('close', () => this.finish());
  }

  private received(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    if (this.state === 'connecting') {
      const end = this.pending.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.pending.length > 64 << 10) this.fail('the upgrade response is too large');
        return;
      }
      const head = this.pending.subarray(0, end).toString('latin1');
      this.pending = this.pending.subarray(end + 4);
      if (!this.upgraded(head)) return;
    }
    this.parseFrames();
  }

  /** Checks the server's answer to the upgrade; on a refusal records its status and ends the connection. */
  private upgraded(head: string): boolean {
    const [status, ...lines] = head.split('\r\n');
    const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(status ?? '')?.[1]);
    if (code !== 101) {
      this.refused = code || undefined;
      this.fail(code ? `HTTP ${code}` : 'not an HTTP response');
      return false;
    }
    const header = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
    const accept = createHash('sha1').update(this.key + GUID).digest('base64');
    if (header('sec-websocket-accept') !== accept) {
      this.fail('the server did not accept the WebSocket key');
      return false;
    }
    clearTimeout(this.handshakeTimer);
    this.state = 'open';
    this.emit('open');
    return true;
  }

  private parseFrames(): void {
    while (this.socket && !this.socket.destroyed) {
      const b = this.pending;
      if (b.length < 2) return;
      const fin = (b[0]! & 0x80) !== 0;
      const op = b[0]! & 0x0f;
      if (b[1]! & 0x80) return this.fail('the server masked a frame', 1002);
      let length = b[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) return this.fail('a message is too large', 1009);
        length = Number(big);
        at = 10;
      }
      if (b.length < at + length) return;
      const payload = b.subarray(at, at + length);
      this.pending = b.subarray(at + length);
      this.handle(fin, op, payload);
    }
  }

  private handle(fin: boolean, op: number, payload: Buffer): void {
    if (op === OP.ping) return void this.frame(OP.pong, payload);
    if (op === OP.pong) return void this.emit('pong');
    if (op === OP.close) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.failure ??= payload.subarray(2).toString() || `code ${this.closeCode}`;
      if (this.state === 'open') this.frame(OP.close, payload.subarray(0, 2)); // the answer, then the server ends it
      this.state = 'closing';
      this.socket?.end();
      return;
    }
    if (op !== OP.continuation && op !== OP.text && op !== OP.binary) return this.fail(`unknown opcode ${op}`, 1002);
    if (op !== OP.continuation) {
      if (this.fragments.length) return this.fail('a new message began inside a fragmented one', 1002);
      this.fragmentsBinary = op === OP.binary;
    } else if (!this.fragments.length) return this.fail('a continuation frame with no message', 1002);
    // Copies: `pending` is a view of a socket chunk that the next concat may keep alive otherwise.
    if (fin && !this.fragments.length) return void this.emit('message', Buffer.from(payload), this.fragmentsBinary);
    this.fragments.push(Buffer.from(payload));
    this.fragmentsLength += payload.length;
    if (this.fragmentsLength > MAX_MESSAGE) return this.fail('a message is too large', 1009);
    if (!fin) return;
    const whole = Buffer.concat(this.fragments, this.fragmentsLength);
    this.fragments = [];
    this.fragmentsLength = 0;
    this.emit('message', whole, this.fragmentsBinary);
  }

  private frame(op: number, payload: Buffer): boolean {
    const socket = this.socket;
    if (!socket || socket.destroyed) return false;
    const n = payload.length;
    const head = Buffer.alloc(n < 126 ? 6 : n < 0x10000 ? 8 : 14);
    head[0] = 0x80 | op;
    if (n < 126) head[1] = 0x80 | n;
    else if (n < 0x10000) (head[1] = 0x80 | 126), head.writeUInt16BE(n, 2);
    else (head[1] = 0x80 | 127), head.writeBigUInt64BE(BigInt(n), 2);
    ZERO_MASK.copy(head, head.length - 4);
    if (n < 4096) return socket.write(n ? Buffer.concat([head, payload]) : head);
    socket.write(head);
    return socket.write(payload);
  }

  private fail(why: string, code?: number): void {
    this.failure ??= why;
    if (code && this.state === 'open') {
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code, 0);
      this.frame(OP.close, body);
    }
    this.terminate();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    const wasClosing = this.state === 'closing';
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.emit('close', wasClosing && this.closeCode !== 1006 ? this.closeCode : 1006, this.failure ?? 'the connection ended');
  }
}

type Target =
  | { kind: 'unix'; path: string; requestPath: string; hostHeader: string }
  | { kind: 'tcp'; secure: boolean; host: string; port: number; requestPath: string; hostHeader: string };

/** `ws+unix:///run/cp.sock:/path` (the form `ws` uses), `ws://host[:port]/path` or `wss://…`. */
function parseUrl(url: string): Target {
  if (url.startsWith('ws+unix://')) {
    const rest = url.slice('ws+unix://'.length);
    const colon = rest.indexOf(':');
    if (colon <= 0) throw new Error(`${url} names no request path after the socket`);
    return { kind: 'unix', path: rest.slice(0, colon), requestPath: rest.slice(colon + 1) || '/', hostHeader: 'localhost' };
  }
  const u = new URL(url);
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`${url} is not a ws:, wss: or ws+unix: URL`);
  const secure = u.protocol === 'wss:';
  return { kind: 'tcp', secure, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || (secure ? 443 : 80), requestPath: `${u.pathname}${u.search}`, hostHeader: u.host };
}

const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(':');
