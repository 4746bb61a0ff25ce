/**
 * The control plane's HTTP API as the browser uses it: the session cookie authenticates, every non-GET request
 * carries the CSRF token, errors come back as `{error:{code,message,hint}}`. Streams: NDJSON progress lines and
 * Server-Sent Events read with fetch (so a dropped stream can resume from where it stopped).
 */

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | null = null;
let onUnauthorized: () => void = () => undefined;

export function setCsrf(token: string | null | undefined): void {
  csrfToken = token ?? null;
}

export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

function headers(method: string, extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json', ...extra };
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) h['X-CSRF-Token'] = csrfToken;
  return h;
}

async function failure(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = `${res.status} ${res.statusText || 'request failed'}`;
  let hint: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; hint?: string } };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      hint = body.error.hint;
    }
  } catch {
    /* not JSON: keep the status line */
  }
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, code, message, hint);
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Do not call the unauthorized handler on 401 (the login screen's own probe). */
  quiet401?: boolean;
}

export async function request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(API + path, {
      method,
      credentials: 'same-origin',
      headers: headers(method, body === undefined ? undefined : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The control plane cannot be reached.', 'Check your connection; the page retries on its own.');
  }
  if (!res.ok) {
    if (opts.quiet401 && res.status === 401) throw new ApiError(401, 'unauthorized', 'Not logged in.');
    throw await failure(res);
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

export const get = <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, undefined, opts);
export const post = <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body ?? {}, opts);
export const put = <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PUT', path, body ?? {}, opts);
export const del = <T>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, undefined, opts);

/** Reads a response body line by line (NDJSON, and the lines of an SSE stream). */
async function lines(res: Response, onLine: (line: string) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      onLine(line);
    }
  }
  if (buf) onLine(buf);
}

export interface Progress {
  step: string;
  detail?: string;
  fraction?: number;
}

/**
 * A long operation with progress (create or start a workspace): `{progress}` lines, then `{result}` or
 * `{error}`. Resolves with the result; rejects with an ApiError.
 */
export async function withProgress<T>(path: string, body: unknown, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<T> {
  const res = await fetch(API + path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: headers('POST', { 'Content-Type': 'application/json', Accept: 'application/x-ndjson' }),
    body: JSON.stringify(body ?? {}),
    signal,
  });
  if (!res.ok) throw await failure(res);
  if (!(res.headers.get('content-type') ?? '').includes('ndjson')) return (await res.json()) as T;
  let result: { ok: true; value: T } | { ok: false; error: ApiError } | undefined;
  await lines(res, (line) => {
    if (!line.trim()) return;
    let o: { progress?: Progress; result?: T; error?: { code: string; message: string; hint?: string } };
    try {
      o = JSON.parse(line);
    } catch {
      return;
    }
    if (o.progress) onProgress(o.progress);
    else if (o.error) result = { ok: false, error: new ApiError(500, o.error.code, o.error.message, o.error.hint) };
    else if ('result' in o) result = { ok: true, value: o.result as T };
  });
  if (!result) throw new ApiError(0, 'network', 'The connection closed before the operation reported its end.', 'Reload: the operation goes on at the server.');
  if (!result.ok) throw result.error;
  return result.value;
}

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * One Server-Sent Events connection read with fetch. Resolves when the server closes the stream; rejects on a
 * network error or an HTTP error (an ApiError). The caller reconnects (and chooses where to resume).
 */
export async function sse(path: string, onMessage: (m: SseMessage) => void, opts: { signal: AbortSignal; onOpen?: () => void; accept?: boolean }): Promise<void> {
  // `accept: false` for routes that always stream: the control plane treats a cookie request that asks for
  // text/event-stream like a WebSocket (it must carry Origin), and browsers send no Origin on a same-origin GET.
  const res = await fetch(API + path, { credentials: 'same-origin', headers: opts.accept === false ? {} : { Accept: 'text/event-stream' }, signal: opts.signal, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  opts.onOpen?.();
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  await lines(res, (line) => {
    if (line === '') {
      if (data.length) onMessage({ event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) });
      event = '';
      data = [];
      id = undefined;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  });
}

/**
 * Keeps an SSE stream open: reconnects after a drop with a backoff (0.5 s doubling to 10 s). `path()` is asked
 * again before each connection, so it can resume from the last event seen. Stops on abort or a 401/403/404.
 */
export function keepStreaming(
  path: () => string,
  onMessage: (m: SseMessage) => void,
  opts: { onState?: (s: 'open' | 'retrying' | 'failed', error?: ApiError) => void; accept?: boolean } = {},
): () => void {
  const ac = new AbortController();
  let delay = 500;
  void (async () => {
    while (!ac.signal.aborted) {
      try {
        await sse(path(), onMessage, {
          signal: ac.signal,
          ...(opts.accept === false ? { accept: false } : {}),
          onOpen: () => {
            delay = 500;
            opts.onState?.('open');
          },
        });
      } catch (e) {
        if (ac.signal.aborted) return;
        if (e instanceof ApiError && [401, 403, 404].includes(e.status)) {
          opts.onState?.('failed', e);
          return;
        }
      }
      if (ac.signal.aborted) return;
      opts.onState?.('retrying');
      await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() * 0.5)));
      delay = Math.min(delay * 2, 10_000);
    }
  })();
  return () => ac.abort();
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Base64 of bytes (file contents for PUT /files), in pieces so large files do not overflow the call stack. */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
