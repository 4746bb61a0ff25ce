/**
 * @module The approval gate for agents whose native hook is a separate command (codex's PreToolUse hook): the
 * driver listens on a private unix socket and gate-hook.js, run by the agent for each tool call, asks it there.
 * One connection is one question: a JSON line `{tool, input}` in, a JSON line `{allow, reason?}` out. The socket
 * can only ask (the answer comes from DriverEvents.gate, i.e. the rules and the user); nothing decides approvals here.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DriverEvents } from './driver.js';

/** The hook client, next to this module once built. */
const GATE_HOOK_SCRIPT = new URL('./gate-hook.js', import.meta.url).pathname;

/** The shell command line an agent runs as its hook: this Node, gate-hook.js, the socket. */
export function gateHookCommand(socketPath: string): string {
  const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [process.execPath, GATE_HOOK_SCRIPT, socketPath].map(sh).join(' ');
}

/** Unix socket paths are limited to about 104 bytes; a deep state dir falls back to a private temp dir. */
const MAX_SOCKET_PATH = 100;

export class GateSocket {
  readonly path: string;
  private readonly server: Server;
  private readonly tempDir: string | undefined;

  /** Listens at once (the bind is synchronous), so the agent may be started right after. */
  constructor(dir: string, gate: DriverEvents['gate']) {
    let path = join(dir, 'gate.sock');
    if (path.length > MAX_SOCKET_PATH) path = join((this.tempDir = mkdtempSync(join(tmpdir(), 'cvm-gate-'))), 'gate.sock');
    this.path = path;
    rmSync(path, { force: true }); // left over by a driver that died
    this.server = createServer((conn) => {
      conn.on('error', () => {}); // the hook gave up (its agent was stopped): nothing to answer
      createInterface({ input: conn }).once('line', (line) => {
        let ask: { tool?: unknown; input?: unknown };
        try { ask = JSON.parse(line) as typeof ask; } catch { ask = {}; }
        const verdict = typeof ask.tool === 'string'
          ? gate(ask.tool, ask.input ?? {}).catch((e: Error) => ({ allow: false as const, reason: `the approval gate failed: ${e.message}` }))
          : Promise.resolve({ allow: false as const, reason: 'the approval gate got a malformed question' });
        void verdict.then((v) => conn.end(JSON.stringify(v) + '\n'));
      });
    });
    this.server.listen(path, () => {
      // The agent may be another user in tests (as in a workspace it is the same one); the directory keeps others out.
      try { chmodSync(path, 0o666); } catch { /* closed already */ }
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => {
      rmSync(this.tempDir ?? this.path, { recursive: true, force: true });
      resolve();
    }));
  }
}
