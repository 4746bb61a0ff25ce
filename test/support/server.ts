/**
 * @module A real `claude-vm server` as a subprocess (its own $CLAUDE_VM_HOME, SQLite or a given database), and small
 * HTTP and WebSocket clients that report exactly what the server answered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { BIN, REPO } from './cli.js';

export interface ServerProcess {
  url: string;
  home: string;
  /** The admin token the server wrote to <home>/token on first start. */
  adminToken: string;
  /** What the server was given with --db, or its default SQLite file. */
  dbUrl: string;
  /** Everything the server wrote to stdout and stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `claude-vm server --listen 127.0.0.1:0` and waits until it has written <home>/server.json. */
export async function startServerProcess(o: { db?: string; args?: string[]; timeoutMs?: number } = {}): Promise<ServerProcess> {
  const home = mkdtempSync(join(tmpdir(), 'cvm-server-'));
  const child = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0', ...(o.db ? ['--db', o.db] : []), ...(o.args ?? [])], {
    cwd: REPO,
    env: { ...process.env, CLAUDE_VM_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (running.delete(child), resolve(code))));
  let gone = false;
  void exited.then(() => (gone = true));

  const file = join(home, 'server.json');
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  while (!existsSync(file)) {
    if (gone) throw new Error(`claude-vm server exited before it answered:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`claude-vm server did not write ${file} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const { url } = JSON.parse(readFileSync(file, 'utf8')) as { url: string };
  const adminToken = readFileSync(join(home, 'token'), 'utf8').trim();
  return {
    url,
    home,
    adminToken,
    dbUrl: o.db ?? `sqlite:${join(home, 'state.db')}`,
    log: () => output,
    /** Stops the server and removes its home. */
    stop: async () => {
      if (!gone) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is (no content type unless given in headers). */
  rawBody?: string;
  timeoutMs?: number;
}

/** One HTTP request; never throws on a status, only when the server does not answer at all. */
export async function request(base: string, method: string, path: string, o: RequestOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers };
  let body: string | undefined = o.rawBody;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const r = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(o.timeoutMs ?? 30_000) });
  // A stream that stays open (Server-Sent Events): its first chunk shows it works; then hang up.
  if (r.ok && r.headers.get('content-type')?.includes('text/event-stream')) {
    const reader = r.body!.getReader();
    const first = await reader.read();
    await reader.cancel();
    return { status: r.status, text: Buffer.from(first.value ?? new Uint8Array()).toString(), json: undefined, headers: r.headers };
  }
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, text, json, headers: r.headers };
}

export interface UpgradeResult {
  /** 101 when the upgrade was accepted, else the HTTP status the server refused it with. */
  status: number;
  /** The refusal's body. */
  body: string;
  /** Binary frames received after an accepted upgrade, until the server closed or `keepOpenMs` passed. */
  frames: Buffer[];
}

/** Attempts a WebSocket upgrade and reports how the server answered it. */
export function wsUpgrade(base: string, path: string, headers: Record<string, string>, o: { keepOpenMs?: number } = {}): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + path, { headers, handshakeTimeout: 15_000 });
    let settled = false;
    const done = (r: UpgradeResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => done({ status: res.statusCode ?? 0, body, frames: [] }));
      res.on('error', () => done({ status: res.statusCode ?? 0, body, frames: [] }));
    });
    ws.on('open', () => {
      const frames: Buffer[] = [];
      ws.on('message', (d: Buffer) => frames.push(d));
      const timer = setTimeout(() => ws.terminate(), o.keepOpenMs ?? 10_000);
      ws.on('close', () => (clearTimeout(timer), done({ status: 101, body: '', frames })));
    });
    ws.on('error', (e) => {
      if (!settled) setTimeout(() => (settled ? undefined : ((settled = true), reject(e))), 100);
    });
  });
}
