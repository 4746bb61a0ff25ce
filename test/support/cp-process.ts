/** @module A `claude-vm server` as its own process (so tests can kill -9 it), and a TCP proxy that can cut links. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { BIN } from './cli.js';

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** The admin token the first start wrote. */
  adminToken: string;
  log(): string;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts `claude-vm server` for `home` and waits until it has written server.json and answers. */
export async function startServerProcess(home: string, opts: { port: number; args?: string[]; env?: Record<string, string> }): Promise<ServerProcess> {
  let out = '';
  const child = spawn(process.execPath, [BIN, 'server', '--listen', `127.0.0.1:${opts.port}`, ...(opts.args ?? [])], {
    env: { ...process.env, CLAUDE_VM_HOME: home, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const url = `http://127.0.0.1:${opts.port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`claude-vm server exited ${child.exitCode}:\n${out}`);
    const file = join(home, 'server.json');
    if (pidIn(file) === child.pid) {
      // A server that accepts the connection but never answers must not stall the test: every probe has a deadline.
      const ok = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (ok) break;
    }
    if (i > 300) {
      child.kill('SIGKILL'); // a half-started server must not outlive the test (nor keep its runner alive)
      throw new Error(`claude-vm server did not come up:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port: opts.port, child, adminToken: readFileSync(join(home, 'token'), 'utf8').trim(), log: () => out };
}

/** The pid a server.json names; undefined while it does not exist (or, from an older server, is half-written). */
function pidIn(file: string): number | undefined {
  try {
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid : undefined;
  } catch {
    return undefined;
  }
}

export async function killHard(p: ServerProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGKILL');
  // SIGKILL cannot be ignored; the deadline only guards against an 'exit' that was already emitted.
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
}

/** A TCP proxy to `targetPort`; `cut()` destroys every connection through it (as a network drop would). */
export async function tcpProxy(targetPort: number): Promise<{ port: number; cut(): number; close(): Promise<void> }> {
  const live = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      live.add(s);
      s.on('close', () => live.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => {
      const n = live.size;
      for (const s of live) s.destroy();
      return n;
    },
    // Stops listening and ends every link, including one opened while closing: never waits on a live tunnel.
    close: () => new Promise((r) => {
      server.close(() => r());
      server.on('connection', (s) => s.destroy());
      for (const s of live) s.destroy();
    }),
  };
}
