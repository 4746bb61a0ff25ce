/** @module Shared by the agent driver tests: a recording DriverEvents, dropping root, and temp dirs that go away. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { EventPayloads, EventType } from '../../src/protocol/events.js';
import type { DriverEvents } from '../../src/daemon/agents/driver.js';
import { classify } from '../../src/daemon/gate.js';

/** Agents refuse (or should not get) root: as root, run them as nobody when setpriv and the temp dir allow it. */
export const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
export const asNobody = process.getuid?.() === 0 && spawnSync('setpriv', [...NOBODY, 'test', '-x', tmpdir()]).status === 0;

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A temp directory removed when the test file ends. */
export function tempRoot(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  roots.push(root);
  return root;
}

export type Call =
  | { kind: 'emit'; type: EventType; data: any }
  | { kind: 'session'; id: string }
  | { kind: 'turnEnded' }
  | { kind: 'exited'; code: number | null; signal: string | null };

/** A DriverEvents that records every call, in order. */
export class Recorder implements DriverEvents {
  readonly calls: Call[] = [];
  emit<T extends EventType>(type: T, data: EventPayloads[T]): void {
    this.calls.push({ kind: 'emit', type, data });
  }
  session(id: string): void {
    this.calls.push({ kind: 'session', id });
  }
  turnEnded(): void {
    this.calls.push({ kind: 'turnEnded' });
  }
  exited(code: number | null, signal: string | null): void {
    this.calls.push({ kind: 'exited', code, signal });
  }
  /** Every gate call, in order, with the verdict the built-in rules gave it. */
  readonly gates: Array<{ tool: string; input: any; action: 'allow' | 'ask' | 'block' }> = [];
  /** The user's answer to an "ask" (as Conversation.gate would wait for it); a test may change it. */
  userDecision: 'allow' | 'deny' = 'deny';
  /** The gate as Conversation.gate applies it: the built-in rules, and `userDecision` for what they ask about. */
  async gate(tool: string, input: unknown): Promise<{ allow: true } | { allow: false; reason: string }> {
    const command = tool === 'Bash' ? (input as { command?: unknown })?.command : undefined;
    const verdict = typeof command === 'string' ? classify(command) : { action: 'allow' as const };
    this.gates.push({ tool, input, action: verdict.action });
    if (verdict.action === 'allow') return { allow: true };
    if (verdict.action === 'block') return { allow: false, reason: `Blocked by the workspace's rules: ${verdict.reason}.` };
    return this.userDecision === 'allow' ? { allow: true } : { allow: false, reason: `The user did not approve this command (${verdict.reason}).` };
  }
  events(type?: EventType): Array<{ type: EventType; data: any }> {
    return this.calls.flatMap((c) => (c.kind === 'emit' && (!type || c.type === type) ? [c] : []));
  }
  get sessions(): string[] {
    return this.calls.flatMap((c) => (c.kind === 'session' ? [c.id] : []));
  }
  count(kind: Call['kind']): number {
    return this.calls.filter((c) => c.kind === kind).length;
  }
  async until(what: string, done: () => boolean, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; calls:\n${JSON.stringify(this.calls, null, 1)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  turns(n: number): Promise<void> {
    return this.until(`${n} turn(s) to end`, () => this.count('turnEnded') >= n);
  }
}

/** The lines every gated driver's test has its agent run: one the user is asked about (and denies), one refused outright, one allowed. */
export const GATE_PROBES = { push: 'touch pushed.txt && git push --force origin main', sudo: 'sudo true', echo: 'echo fine' } as const;

/**
 * After the agent tried GATE_PROBES in order (qwen reads a file instead of echoing, so the allowed line is given):
 * the gate saw each with the right verdict, the denied line did not run, and the model read why (`replies`: what
 * the model got back for each call).
 */
export function assertGated(ev: Recorder, cwd: string, replies: string[], allowed: string = GATE_PROBES.echo, allowedReply: RegExp = /fine/): void {
  assert.deepEqual(ev.gates.map((g) => [g.tool, g.input.command, g.action]), [
    ['Bash', GATE_PROBES.push, 'ask'],
    ['Bash', GATE_PROBES.sudo, 'block'],
    ['Bash', allowed, 'allow'],
  ]);
  assert.ok(!existsSync(join(cwd, 'pushed.txt')), 'the refused command did not run');
  assert.equal(replies.length, 3, JSON.stringify(replies));
  assert.match(replies[0]!, /did not approve this command/);
  assert.match(replies[1]!, /privilege escalation is not allowed/);
  assert.match(replies[2]!, allowedReply);
}
