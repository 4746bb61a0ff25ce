/** @module What every scripted model server needs from HTTP: listening, reading a request, answering, closing. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ListenOptions {
  /** Default 127.0.0.1; '0.0.0.0' lets a container reach it via the host gateway. */
  host?: string;
  port?: number;
}

/** Listens on a random port; `url` names loopback even for a wildcard host (a container swaps in its gateway). */
export function listen(
  name: string,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  opts: ListenOptions = {},
): Promise<{ server: Server; url: string }> {
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      handle(req, res).catch((err) => (console.error(`${name}:`, err), res.destroy()));
    });
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      const { port } = server.address() as AddressInfo;
      const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
      resolve({ server, url: `http://${urlHost}:${port}` });
    });
  });
}

/** Agent CLIs keep connections alive; dropping them lets close() finish at once instead of at the idle timeout. */
export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface ReadRequest {
  /** Parsed JSON; the raw text when it is not JSON; null when empty. */
  body: any;
  path: string;
  pathname: string;
  headers: Record<string, string>;
}

export async function readRequest(req: IncomingMessage): Promise<ReadRequest> {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  let body: any = null;
  try {
    body = raw ? JSON.parse(raw) : null;
  } catch {
    body = raw;
  }
  const path = req.url ?? '/';
  return { body, path, pathname: path.split('?')[0]!, headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])) };
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

/** Wait ms, but stop early when the client hangs up (an interrupt aborts the request), so no timer lingers. */
export function pause(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => (clearTimeout(timer), res.off('close', done), resolve());
    const timer = setTimeout(done, ms);
    res.on('close', done);
  });
}
