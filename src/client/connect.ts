/**
 * @module Finds the control plane to talk to: $CLAUDE_VM_URL/$CLAUDE_VM_TOKEN, else the one `claude-vm login`
 * saved, else this home's local server, started on loopback if it is not running. All three use the same API.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../protocol/errors.js';
import type { Connection } from './http.js';

export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'claude-vm.js');

export interface SavedLogin {
  url: string;
  token: string;
}

export function loginFile(home: string): string {
  return join(home, 'login.json');
}

export function saveLogin(home: string, login: SavedLogin): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(loginFile(home), JSON.stringify(login) + '\n', { mode: 0o600 });
}

export async function resolveConnection(home: string): Promise<Connection> {
  if (process.env.CLAUDE_VM_URL) {
    const token = process.env.CLAUDE_VM_TOKEN;
    if (!token) throw new UserError('unauthorized', 'CLAUDE_VM_URL is set but CLAUDE_VM_TOKEN is not.', 'Set both, or use `claude-vm login <url>`.');
    return { url: process.env.CLAUDE_VM_URL, token };
  }
  if (existsSync(loginFile(home))) {
    const saved = JSON.parse(readFileSync(loginFile(home), 'utf8')) as SavedLogin;
    return saved;
  }
  return localServer(home);
}

/** This home's server: found through server.json, or started (detached, so it outlives this command). */
export async function localServer(home: string): Promise<Connection> {
  const found = await runningLocal(home);
  if (found) return found;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const log = openSync(join(home, 'server.log'), 'a', 0o600);
  const child = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0'], { detached: true, stdio: ['ignore', log, log], env: process.env });
  closeSync(log);
  child.unref();
  let exited = false;
  child.once('exit', () => (exited = true));
  // Another command may have started one at the same moment; either way, wait for whichever answers.
  for (let i = 0; i < 400; i++) {
    await new Promise((r) => setTimeout(r, i < 20 ? 25 : 100));
    const c = await runningLocal(home);
    if (c) return c;
    if (exited && i > 50) break;
  }
  const tail = existsSync(join(home, 'server.log')) ? readFileSync(join(home, 'server.log'), 'utf8').trim().split('\n').slice(-3).join(' / ') : '';
  throw new UserError('provider_unavailable', `The local claude-vm server did not start${tail ? `: ${tail}` : ''}.`, `See ${join(home, 'server.log')}.`);
}

async function runningLocal(home: string): Promise<Connection | undefined> {
  let file: { url: string; pid: number };
  let token: string;
  try {
    file = JSON.parse(readFileSync(join(home, 'server.json'), 'utf8')) as { url: string; pid: number };
    token = readFileSync(join(home, 'token'), 'utf8').trim();
  } catch {
    return undefined;
  }
  try {
    process.kill(file.pid, 0);
  } catch {
    // Left behind by a server that was killed: the next start replaces it.
    rmSync(join(home, 'server.json'), { force: true });
    return undefined;
  }
  try {
    const res = await fetch(`${file.url}/api/v1/health`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return undefined;
  } catch {
    return undefined;
  }
  return { url: file.url, token, reconnect: () => localServer(home) };
}
