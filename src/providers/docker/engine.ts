/**
 * @module A small client for the Docker Engine API over a unix socket or TCP: JSON calls, streamed bodies, and
 * hijacked exec connections. Written here rather than pulled in because every CLI call pays its load time.
 */
import http from 'node:http';
import type { Duplex, Readable, Writable } from 'node:stream';
import { UserError, errorMessage } from '../../protocol/errors.js';

const API = '/v1.41';

export class EngineError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export class Engine {
  private readonly target: { socketPath: string } | { host: string; port: number };
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(readonly where: string) {
    const url = new URL(where);
    if (url.protocol === 'unix:') this.target = { socketPath: url.pathname };
    else if (url.protocol === 'tcp:' || url.protocol === 'http:') this.target = { host: url.hostname, port: Number(url.port || 2375) };
    else throw new UserError('invalid_argument', `Unsupported Docker host "${where}".`, 'Use unix:///path/to/docker.sock or tcp://host:port.');
  }

  /** True for an engine on this machine (a unix socket), whose containers can mount this machine's files. */
  get local(): boolean {
    return 'socketPath' in this.target;
  }

  /** A JSON call; 2xx bodies are parsed (empty → undefined), other statuses throw EngineError with Docker's message. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await readAll(res);
    if ((res.statusCode ?? 500) >= 300) throw toError(res.statusCode ?? 500, text);
    // Most answers are JSON; a few (/_ping) are plain text.
    const json = (res.headers['content-type'] ?? '').includes('json');
    return (json && text ? JSON.parse(text) : text || undefined) as T;
  }

  /** A call whose body is a stream (pull progress, followed logs). */
  async stream(method: string, path: string, body?: unknown): Promise<http.IncomingMessage> {
    const res = await this.send(method, path, body);
    if ((res.statusCode ?? 500) >= 300) throw toError(res.statusCode ?? 500, await readAll(res));
    return res;
  }

  /** A call whose request body is a stream (an image tarball for /images/load); answers like `call`. */
  async upload<T = unknown>(path: string, body: Readable, contentType = 'application/x-tar'): Promise<T> {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ ...this.target, agent: this.agent, method: 'POST', path: API + path, headers: { 'Content-Type': contentType } });
      req.on('response', resolve);
      req.on('error', reject);
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    });
    const text = await readAll(res);
    if ((res.statusCode ?? 500) >= 300) throw toError(res.statusCode ?? 500, text);
    return text as T;
  }

  /** Starts an exec and hands back the raw two-way connection (Docker's "hijack" via HTTP upgrade). */
  hijack(path: string, body: unknown): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        ...this.target,
        method: 'POST',
        path: API + path,
        headers: { 'Content-Type': 'application/json', Connection: 'Upgrade', Upgrade: 'tcp' },
      });
      // Bytes that arrived with the 101 response belong to the stream (often a program's first screen): keep them.
      req.on('upgrade', (_res, socket, head) => {
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res) => readAll(res).then((t) => reject(toError(res.statusCode ?? 500, t)), reject));
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, body?: unknown): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request({
        ...this.target,
        agent: this.agent,
        method,
        path: API + path,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.end(payload);
    });
  }
}

/** The engine address: a provider `host` option, else DOCKER_HOST, else the local socket. */
export function connectEngine(host?: string): Engine {
  return new Engine(host || process.env.DOCKER_HOST || 'unix:///var/run/docker.sock');
}

export function statusOf(e: unknown): number | undefined {
  return e instanceof EngineError ? e.statusCode : undefined;
}

export async function pingEngine(engine: Engine): Promise<void> {
  try {
    await withTimeout(engine.call('GET', '/_ping'), 5000, 'no answer in 5 s');
  } catch (e) {
    throw new UserError(
      'provider_unavailable',
      `Cannot reach the Docker engine at ${engine.where} (${errorMessage(e)}).`,
      'Start Docker (e.g. `sudo systemctl start docker`), set DOCKER_HOST, or use `--provider local`.',
      { cause: e },
    );
  }
}

/**
 * Splits Docker's multiplexed stdout/stderr stream (8-byte frame headers) onto two writables.
 * Resolves when the source ends.
 */
export function demux(source: Readable, stdout: Writable, stderr: Writable): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  source.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let full: Writable | undefined;
    while (pending.length >= 8) {
      const len = pending.readUInt32BE(4);
      if (pending.length < 8 + len) break;
      const target = pending[0] === 2 ? stderr : stdout;
      if (!target.write(pending.subarray(8, 8 + len))) full = target;
      pending = pending.subarray(8 + len);
    }
    // A slow reader (a snapshot being stored) slows the command down instead of filling this process's memory.
    if (full) {
      source.pause();
      full.once('drain', () => source.resume());
    }
  });
  return new Promise((resolve, reject) => {
    source.on('end', resolve);
    source.on('close', resolve);
    source.on('error', reject);
  });
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]);
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (s += d));
    res.on('end', () => resolve(s));
    res.on('error', reject);
  });
}

function toError(status: number, text: string): EngineError {
  let message = text.trim();
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // Not JSON: keep Docker's plain text.
  }
  return new EngineError(status, message || `HTTP ${status}`);
}
