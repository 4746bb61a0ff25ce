/**
 * @module The client over the control plane's API: JSON calls, NDJSON progress, SSE events (resumed after any
 * drop with Last-Event-ID semantics, so a restarted server costs no event), and WebSocket exec streams.
 */
import { readFileSync } from 'node:fs';
import { WebSocket, createWebSocketStream } from 'ws';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FAST_CLIENT } from '../protocol/mux.js';
import { UserError, type ErrorCode } from '../protocol/errors.js';
import type { AnyEvent } from '../protocol/events.js';
import type { ProgressEvent } from '../protocol/types.js';
import type { ExecHandle } from '../providers/provider.js';
import { PROVIDER_TYPES } from '../providers/registry.js';
import type { ClaudeVmClient, StreamIo } from './client.js';

const KNOWN: ErrorCode[] = ['not_found', 'ambiguous', 'invalid_argument', 'already_exists', 'provider_unavailable', 'image_missing', 'source_failed', 'wrong_state', 'cancelled', 'unauthorized', 'forbidden', 'limit_exceeded'];
const CONTROL = 3;

export interface Connection {
  url: string;
  token: string;
  /** Called when the server cannot be reached, before retrying a followed stream (restarts a local server). */
  reconnect?: () => Promise<Connection>;
}

export function httpClient(initial: Connection): ClaudeVmClient {
  let conn = initial;
  const base = () => conn.url.replace(/\/$/, '');

  async function request(method: string, path: string, body?: unknown, opts: { accept?: string; signal?: AbortSignal; upload?: Readable } = {}): Promise<Response> {
    let res: Response;
    try {
      const type = opts.upload ? 'application/octet-stream' : body !== undefined ? 'application/json' : undefined;
      res = await fetch(base() + path, {
        method,
        headers: { authorization: `Bearer ${conn.token}`, ...(type ? { 'content-type': type } : {}), ...(opts.accept ? { accept: opts.accept } : {}) },
        body: opts.upload ? (Readable.toWeb(opts.upload) as ReadableStream) : body !== undefined ? JSON.stringify(body) : undefined,
        signal: opts.signal,
        ...(opts.upload ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new UserError('provider_unavailable', `Cannot reach the claude-vm server at ${conn.url} (${causeOf(e)}).`, 'Start it with `claude-vm server`, or check `claude-vm login`.', { cause: e });
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await request(method, path, body)).json()) as T;
  }

  /** A long operation: progress lines, then the result (or the error) as the last line. */
  async function withProgress<T>(path: string, body: unknown, progress?: (e: ProgressEvent) => void, opts: { method?: string; upload?: Readable } = {}): Promise<T> {
    const res = await request(opts.method ?? 'POST', path, body, { accept: 'application/x-ndjson', upload: opts.upload });
    let result: T | undefined;
    for await (const line of lines(res)) {
      const m = JSON.parse(line) as { progress?: ProgressEvent; result?: T; error?: { code: string; message: string; hint?: string } };
      if (m.progress) progress?.(m.progress);
      if (m.error) throw toUserError(m.error);
      if (m.result !== undefined) result = m.result;
    }
    if (result === undefined) throw new UserError('provider_unavailable', 'The server stopped answering before the operation finished.', 'Check with `claude-vm workspace list`; the operation may have completed.');
    return result;
  }

  function openStream(path: string, query: URLSearchParams, io: StreamIo, withStdin: boolean): Promise<ExecHandle> {
    if (io.tty) (query.set('rows', String(io.tty.rows)), query.set('cols', String(io.tty.cols)));
    if (io.env?.TERM) query.set('term', io.env.TERM);
    const ws = new WebSocket(`${base().replace(/^http/, 'ws')}${path}?${query}`, { ...FAST_CLIENT, headers: { authorization: `Bearer ${conn.token}` } });
    return new Promise((resolve, reject) => {
      let code: number | undefined;
      let failure: UserError | undefined;
      const exit = new Promise<number>((done, fail) => {
        ws.on('message', (data: Buffer) => {
          const channel = data[0];
          const body = data.subarray(1);
          if (channel === 1) io.stdout.write(body);
          else if (channel === 2) (io.stderr ?? io.stdout).write(body);
          else if (channel === CONTROL) {
            const m = JSON.parse(body.toString()) as { exit?: number; error?: { code: string; message: string; hint?: string } };
            if (m.exit !== undefined) code = m.exit;
            if (m.error) failure = toUserError(m.error);
          }
        });
        ws.on('close', () => {
          io.stdin?.off('data', onInput);
          if (failure) fail(failure);
          else if (code === undefined) fail(new UserError('provider_unavailable', 'The connection to the workspace was lost.', 'Run the command again; `claude-vm ssh` reattaches to the same tmux session.'));
          else done(code);
        });
      });
      const onInput = (d: Buffer | string) => ws.readyState === ws.OPEN && ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(d)]));
      refusalOf(ws, conn.url).catch(reject);
      ws.on('open', () => {
        if (withStdin && io.stdin) {
          io.stdin.on('data', onInput);
          io.stdin.once('end', () => ws.readyState === ws.OPEN && ws.send(Buffer.concat([Buffer.from([CONTROL]), Buffer.from(JSON.stringify({ eof: true }))])));
          io.stdin.resume();
        }
        resolve({
          exit,
          resize: (rows, cols) => ws.readyState === ws.OPEN && ws.send(Buffer.concat([Buffer.from([CONTROL]), Buffer.from(JSON.stringify({ resize: { rows, cols } }))])),
        });
      });
    });
  }

  const enc = encodeURIComponent;

  /** A WebSocket whose binary frames are a byte stream, as a Duplex (with the socket's backpressure). */
  function byteStream(path: string): Promise<Duplex> {
    const ws = new WebSocket(`${base().replace(/^http/, 'ws')}${path}`, { ...FAST_CLIENT, headers: { authorization: `Bearer ${conn.token}` } });
    return new Promise((resolve, reject) => {
      refusalOf(ws, conn.url).catch(reject);
      ws.once('open', () => resolve(createWebSocketStream(ws)));
    });
  }

  return {
    get url() {
      return conn.url;
    },
    me: () => json('GET', '/api/v1/me'),
    loginLink: () => json('POST', '/api/v1/auth/login-links'),
    providers: {
      types: () => Object.values(PROVIDER_TYPES).map(({ type, description, isolates, options, sizes, defaultSize }) => ({ type, description, isolates, options, sizes, defaultSize })),
      list: () => json('GET', '/api/v1/providers'),
      add: (req) => json('POST', '/api/v1/providers', req),
      setOptions: (name, options) => json('PATCH', `/api/v1/providers/${enc(name)}`, { options }),
      delete: async (name) => void (await json('DELETE', `/api/v1/providers/${enc(name)}`)),
    },
    workspaces: {
      up: (req, progress) => {
        // A bare id (no path, no URL) that names an existing workspace resumes it; the server decides.
        return withProgress('/api/v1/workspaces', req, progress);
      },
      list: (filter) => json('GET', `/api/v1/workspaces${filter?.status ? `?status=${filter.status}` : ''}`),
      get: (ref) => json('GET', `/api/v1/workspaces/${enc(ref)}`),
      down: (ref, opts, progress) => withProgress(`/api/v1/workspaces/${enc(ref)}/stop`, { force: !!opts?.force }, progress),
      delete: (ref, opts, progress) => withProgress(`/api/v1/workspaces/${enc(ref)}?purge=${!!opts?.purge}`, undefined, progress, { method: 'DELETE' }),
      exec: (ref, req) => {
        const q = new URLSearchParams();
        for (const a of req.argv) q.append('argv', a);
        if (req.tty) q.set('tty', 'true');
        if (!req.stdin) q.set('stdin', 'false');
        return openStream(`/api/v1/workspaces/${enc(ref)}/exec`, q, req, !!req.stdin);
      },
      shell: (ref, io) => openStream(`/api/v1/workspaces/${enc(ref)}/terminal`, new URLSearchParams(), io, true),
      logs: async (ref, opts) => {
        const q = new URLSearchParams({ follow: String(!!opts.follow), ...(opts.tail !== undefined ? { tail: String(opts.tail) } : {}) });
        const res = await request('GET', `/api/v1/workspaces/${enc(ref)}/logs?${q}`);
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) opts.stdout.write(chunk);
      },
      rules: (ref) => json('GET', `/api/v1/workspaces/${enc(ref)}/rules`),
      setRules: (ref, text) => json('PUT', `/api/v1/workspaces/${enc(ref)}/rules`, { text }),
    },
    agents: {
      set: ({ agent, workspaceId, workspace, ...rest }) => json('PUT', `/api/v1/agents/${enc(agent)}`, { workspace: workspace ?? workspaceId, ...rest }),
      list: () => json('GET', '/api/v1/agents'),
      install: (req, progress) => {
        let caPem: string | undefined;
        if (req.caBundle) {
          try {
            caPem = readFileSync(req.caBundle, 'utf8');
          } catch (e) {
            throw new UserError('not_found', `Cannot read CA bundle ${req.caBundle}: ${(e as Error).message}.`, 'Pass --ca-bundle with a PEM file, or --ca-bundle "" for none.');
          }
        }
        return withProgress(`/api/v1/workspaces/${enc(req.workspace)}/agents/${enc(req.agent)}/install`, { caPem }, progress);
      },
    },
    conversations: {
      create: (req) => json('POST', '/api/v1/conversations', req),
      list: (ws) => json('GET', `/api/v1/conversations${ws ? `?workspace=${enc(ws)}` : ''}`),
      get: (ref) => json('GET', `/api/v1/conversations/${enc(ref)}`),
      send: (ref, text) => json('POST', `/api/v1/conversations/${enc(ref)}/messages`, { text }),
      cancel: async (ref, queueId) => void (await json('DELETE', `/api/v1/conversations/${enc(ref)}/messages/${enc(queueId)}`)),
      interrupt: async (ref) => (await json<{ interrupted: boolean }>('POST', `/api/v1/conversations/${enc(ref)}/interrupt`)).interrupted,
      events: async (ref, opts) => {
        let next = opts.from ?? 1;
        if (!opts.follow) {
          for (;;) {
            const page = await json<AnyEvent[]>('GET', `/api/v1/conversations/${enc(ref)}/events?from=${next}&limit=1000`);
            for (const e of page) (opts.onEvent(e), (next = e.seq + 1));
            if (page.length < 1000) return;
          }
        }
        // Follow: whatever ends the stream short of the caller's abort (a server restart, a network drop), reconnect
        // from the next sequence number. Errors that retrying cannot fix (not found, no access) end it.
        for (let attempt = 0; !opts.signal?.aborted; attempt++) {
          try {
            const res = await request('GET', `/api/v1/conversations/${enc(ref)}/events?from=${next}`, undefined, { accept: 'text/event-stream', signal: opts.signal });
            attempt = 0;
            for await (const block of sseBlocks(res)) {
              const data = /^data: (.*)$/m.exec(block)?.[1];
              if (!data) continue;
              const e = JSON.parse(data) as AnyEvent;
              if (e.seq < next) continue;
              opts.onEvent(e);
              next = e.seq + 1;
            }
          } catch (e) {
            if (opts.signal?.aborted || (e as Error).name === 'AbortError') return;
            if (e instanceof UserError && e.code !== 'provider_unavailable') throw e;
          }
          if (opts.signal?.aborted) return;
          await sleep(Math.min(250 * 2 ** attempt, 3000), opts.signal);
          if (conn.reconnect) conn = await conn.reconnect().catch(() => conn);
        }
      },
      tui: (ref, io) => openStream(`/api/v1/conversations/${enc(ref)}/tui`, new URLSearchParams(), io, true),
    },
    snapshots: {
      take: (ref, opts, progress) => withProgress(`/api/v1/workspaces/${enc(ref)}/snapshots`, { includeCaches: !!opts?.includeCaches }, progress),
      list: (ref) => json('GET', `/api/v1/workspaces/${enc(ref)}/snapshots`),
      export: async (ref, out) => {
        const res = await request('GET', `/api/v1/workspaces/${enc(ref)}/export`);
        await pipeline(Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>), out);
      },
      import: (input, req, progress) => {
        const q = new URLSearchParams(Object.entries(req).filter((e): e is [string, string] => typeof e[1] === 'string'));
        return withProgress(`/api/v1/workspaces/import?${q}`, undefined, progress, { upload: input });
      },
    },
    approvals: {
      list: () => json('GET', '/api/v1/approvals'),
      decide: (id, decision, remember) => json('POST', `/api/v1/approvals/${enc(id)}`, { decision, ...(remember ? { remember: true } : {}) }),
    },
    users: {
      list: () => json('GET', '/api/v1/users'),
      add: (name, admin) => json('POST', '/api/v1/users', { name, admin }),
      delete: async (ref) => void (await json('DELETE', `/api/v1/users/${enc(ref)}`)),
    },
    tokens: {
      list: () => json('GET', '/api/v1/tokens'),
      create: (req) => json('POST', '/api/v1/tokens', req),
      revoke: async (id) => void (await json('DELETE', `/api/v1/tokens/${enc(id)}`)),
    },
    audit: (limit) => json('GET', `/api/v1/audit${limit ? `?limit=${limit}` : ''}`),
    ssh: {
      keys: () => json('GET', '/api/v1/ssh-keys'),
      addKey: (publicKey, name) => json('POST', '/api/v1/ssh-keys', { publicKey, name }),
      removeKey: async (id) => void (await json('DELETE', `/api/v1/ssh-keys/${enc(id)}`)),
      host: (ws) => json('GET', `/api/v1/workspaces/${enc(ws)}/ssh-host`),
      connect: (ws) => byteStream(`/api/v1/workspaces/${enc(ws)}/ssh`),
      port: (ws, port) => byteStream(`/api/v1/workspaces/${enc(ws)}/ports/${port}`),
    },
    close: () => undefined,
  };
}

/** Rejects with the server's reason when a WebSocket upgrade is refused (or the server cannot be reached). */
function refusalOf(ws: WebSocket, url: string): Promise<never> {
  return new Promise((_resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => {
        try {
          reject(toUserError((JSON.parse(text) as { error: { code: string; message: string; hint?: string } }).error));
        } catch {
          reject(new UserError('provider_unavailable', `The server refused the connection (HTTP ${res.statusCode}).`));
        }
      });
    });
    ws.on('error', (e) => reject(new UserError('provider_unavailable', `Cannot reach the claude-vm server at ${url} (${causeOf(e)}).`)));
  });
}

async function errorOf(res: Response): Promise<UserError> {
  const text = await res.text().catch(() => '');
  try {
    return toUserError((JSON.parse(text) as { error: { code: string; message: string; hint?: string } }).error);
  } catch {
    return new UserError('provider_unavailable', `The server answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}.`);
  }
}

function toUserError(e: { code: string; message: string; hint?: string }): UserError {
  return new UserError(KNOWN.includes(e.code as ErrorCode) ? (e.code as ErrorCode) : 'provider_unavailable', e.message, e.hint);
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c?.code ?? c?.message ?? (e as Error).message;
}

async function* lines(res: Response): AsyncGenerator<string> {
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield line;
    }
  }
  if (buf.trim()) yield buf;
}

/** SSE event blocks (separated by a blank line). */
async function* sseBlocks(res: Response): AsyncGenerator<string> {
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      yield buf.slice(0, end);
      buf = buf.slice(end + 2);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
