/**
 * @module One conversation: its event log, its message queue and its agent driver. The daemon, not the agent,
 * owns the queue: a message sent while a turn runs waits here (visible, cancellable) and goes to the agent
 * when the turn ends.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AgentName, ConversationInfo, ConversationState, QueuedMessage } from '../protocol/events.js';
import { EventLog } from './event-log.js';
import { scrubSecrets, secretValues } from './scrub.js';
import { classify } from './gate.js';
import type { GateRule } from '../protocol/gate-rules.js';
import type { AgentDefinition, AgentDriver } from './agents/driver.js';

interface Meta {
  id: string;
  workspaceId: string;
  agent: AgentName;
  model: string | null;
  sessionId: string | null;
  state: ConversationState;
  queue: QueuedMessage[];
  /** The message the agent is working on, so a daemon restart can say which turn it cut short. */
  inFlight: QueuedMessage | null;
  costUsd: number;
  lastMessage: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ConversationDeps {
  dir: string;
  projectDir: string;
  /** Where secrets for this conversation's agent are kept outside the volume (survives daemon restarts only). */
  secretFile: string;
  agent: AgentDefinition;
  /** How long an approval request waits for the user before it is refused. */
  approvalTimeoutMs?: number;
  /** The user's approval rules, as the control plane last delivered them (never read from the volume). */
  rules?: () => GateRule[];
}

export class Conversation {
  readonly log: EventLog;
  private meta: Meta;
  private driver: AgentDriver | undefined;
  /** A driver whose settings are outdated, finishing its turn before it is stopped. */
  private retiring: AgentDriver | undefined;
  private env: Record<string, string> = {};
  /** Approval requests waiting for the user, by id. */
  private readonly pending = new Map<string, { decide: (allow: boolean, by: string) => void; command: string }>();

  private constructor(
    private readonly deps: ConversationDeps,
    meta: Meta,
  ) {
    this.meta = meta;
    this.log = new EventLog(join(deps.dir, 'events.jsonl'), meta.id);
    if (existsSync(deps.secretFile)) this.env = JSON.parse(readFileSync(deps.secretFile, 'utf8')) as Record<string, string>;
  }

  static create(deps: ConversationDeps, init: { id: string; workspaceId: string; agent: AgentName; model: string | null }): Conversation {
    mkdirSync(deps.dir, { recursive: true });
    const now = new Date().toISOString();
    const c = new Conversation(deps, { ...init, sessionId: null, state: 'idle', queue: [], inFlight: null, costUsd: 0, lastMessage: null, createdAt: now, updatedAt: now });
    c.save();
    c.log.append('conversation.created', { agent: init.agent, model: init.model });
    return c;
  }

  /** Loads a conversation after a daemon start; a turn that was running when the daemon died is reported as cut short. */
  static load(deps: ConversationDeps): Conversation {
    const meta = JSON.parse(readFileSync(join(deps.dir, 'meta.json'), 'utf8')) as Meta;
    const c = new Conversation(deps, meta);
    if (meta.state === 'tui') {
      // The TUI's holder was this daemon's client; a new daemon has none.
      c.meta.state = 'idle';
      c.save();
    }
    if (meta.inFlight || meta.state === 'working') {
      c.log.append('turn.interrupted', { reason: 'the workspace daemon restarted during this turn' });
      c.meta.inFlight = null;
      c.meta.state = 'idle';
      c.save();
    }
    return c;
  }

  info(): ConversationInfo {
    const { inFlight: _f, ...rest } = this.meta;
    return { ...rest, lastSeq: this.log.lastSeq };
  }

  /** Agent settings arrive with every client call that may start the agent; the newest win. */
  configure(env: Record<string, string> | undefined): void {
    if (!env || JSON.stringify(env) === JSON.stringify(this.env)) return;
    this.env = env;
    // A long-lived agent read its settings when it started: restart it (resuming the session) before the next turn.
    if (this.driver) {
      const old = this.driver;
      this.driver = undefined;
      this.retiring = this.meta.state === 'working' ? old : undefined;
      if (!this.retiring) void old.stop();
    }
    writeFileSync(this.deps.secretFile, JSON.stringify(env), { mode: 0o600 });
    chmodSync(this.deps.secretFile, 0o600);
  }

  enqueue(text: string): QueuedMessage {
    const m = { queueId: `q_${randomBytes(4).toString('hex')}`, text, queuedAt: new Date().toISOString() };
    this.meta.queue.push(m);
    this.save();
    this.log.append('message.queued', { queueId: m.queueId, text });
    this.pump();
    return m;
  }

  cancel(queueId: string): boolean {
    const i = this.meta.queue.findIndex((m) => m.queueId === queueId);
    if (i < 0) return false;
    this.meta.queue.splice(i, 1);
    this.save();
    this.log.append('message.cancelled', { queueId });
    return true;
  }

  /**
   * The approval gate for one tool call. Allowed calls pass silently; blocked ones are refused with the rule's
   * reason; risky ones become an approval request that the user decides (from the CLI, the web UI or a
   * notification) before `deps.approvalTimeoutMs` runs out, which refuses.
   */
  async gate(tool: string, input: unknown): Promise<{ allow: true } | { allow: false; reason: string }> {
    const command = tool === 'Bash' && typeof (input as { command?: unknown })?.command === 'string' ? (input as { command: string }).command : undefined;
    if (command === undefined) return { allow: true };
    const verdict = classify(command, this.deps.rules?.() ?? []);
    if (verdict.action === 'allow') return { allow: true };
    if (verdict.action === 'block') return { allow: false, reason: `Blocked by the workspace's rules: ${verdict.reason}.` };
    const approvalId = `apr_${randomBytes(5).toString('hex')}`;
    const timeoutMs = this.deps.approvalTimeoutMs ?? 15 * 60_000;
    this.log.append('approval.requested', { approvalId, tool, input: scrubSecrets(input, secretValues(this.env)), reason: verdict.reason, expiresAt: new Date(Date.now() + timeoutMs).toISOString() });
    this.meta.state = 'waiting-approval';
    this.save();
    const allow = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => decide(false, 'timeout'), timeoutMs);
      const decide = (ok: boolean, by: string) => {
        clearTimeout(timer);
        this.pending.delete(approvalId);
        this.log.append('approval.decided', { approvalId, decision: ok ? 'allow' : 'deny', by });
        resolve(ok);
      };
      this.pending.set(approvalId, { decide, command });
    });
    if (this.meta.state === 'waiting-approval') {
      this.meta.state = 'working';
      this.save();
    }
    return allow ? { allow: true } : { allow: false, reason: `The user did not approve this command (${verdict.reason}). Do not try to run it another way; ask them.` };
  }

  /** The user's answer to an approval request: the command it was about, or undefined when it is not (or no longer) waiting. */
  decide(approvalId: string, decision: 'allow' | 'deny', by: string): { command: string } | undefined {
    const p = this.pending.get(approvalId);
    if (!p) return undefined;
    p.decide(decision === 'allow', by);
    return { command: p.command };
  }

  async interrupt(): Promise<boolean> {
    const d = this.retiring ?? this.driver;
    if (this.meta.state !== 'working' || !d) return false;
    await d.interrupt();
    return true;
  }

  async stop(): Promise<void> {
    await this.driver?.stop();
  }

  /**
   * Hands the session to the agent's own TUI: only between turns, and the headless process is stopped first so
   * two programs never write to one session. Queued messages wait until `releaseTui`.
   */
  async holdForTui(): Promise<{ sessionId: string | null; env: Record<string, string>; cwd: string }> {
    if (this.meta.state === 'working' || this.meta.state === 'waiting-approval') {
      throw new Error('The agent is in the middle of a turn; interrupt it or wait, then open the TUI.');
    }
    if (this.meta.state === 'tui') throw new Error('The TUI is already open on this conversation.');
    if (this.meta.agent !== 'claude') throw new Error(`Opening the ${this.meta.agent} TUI on a conversation is not supported yet.`);
    const d = this.driver;
    this.driver = undefined;
    await d?.stop();
    this.meta.state = 'tui';
    this.save();
    this.log.append('tui.attached', {});
    return { sessionId: this.meta.sessionId, env: this.env, cwd: this.deps.projectDir };
  }

  releaseTui(): void {
    if (this.meta.state !== 'tui') return;
    this.meta.state = 'idle';
    this.save();
    this.log.append('tui.detached', {});
    this.pump();
  }

  /** Sends the next queued message when the agent is free. */
  private pump(): void {
    if (this.meta.state === 'working' || this.meta.state === 'tui' || this.meta.queue.length === 0) return;
    const next = this.meta.queue.shift()!;
    this.meta.inFlight = next;
    this.meta.state = 'working';
    // The last message is what the conversation is about now: a queued one may yet be cancelled.
    this.meta.lastMessage = next.text;
    this.save();
    this.log.append('message.sent', { queueId: next.queueId, text: next.text });
    try {
      (this.driver ??= this.startDriver()).send(next.text);
    } catch (e) {
      this.log.append('error', { message: `Could not start ${this.meta.agent}: ${(e as Error).message}` });
      this.finishTurn('failed');
    }
  }

  private startDriver(): AgentDriver {
    const stateDir = join(this.deps.dir, 'agent');
    mkdirSync(stateDir, { recursive: true });
    const driver: AgentDriver = this.deps.agent.create(
      { cwd: this.deps.projectDir, env: this.env, model: this.meta.model, sessionId: this.meta.sessionId, stateDir },
      {
        emit: (type, data) => {
          // Whatever a driver or a tool printed, the agent's secrets never reach the log.
          const e = this.log.append(type, scrubSecrets(data, secretValues(this.env)));
          if (e.type === 'turn.completed') {
            this.meta.costUsd += e.data.costUsd ?? 0;
            if (e.data.result) this.meta.lastMessage = e.data.result;
          } else if (e.type === 'assistant.text') this.meta.lastMessage = e.data.text;
        },
        session: (sessionId) => {
          this.meta.sessionId = sessionId;
          this.save();
        },
        turnEnded: () => {
          if (this.retiring === driver) {
            this.retiring = undefined;
            void driver.stop();
          }
          this.finishTurn(lastTurnFailed(this.log) ? 'failed' : 'idle');
        },
        exited: (code, signal) => {
          // Only the current driver's exit matters for what runs next; a retired one was stopped on purpose.
          if (this.driver === driver) this.driver = undefined;
          for (const p of this.pending.values()) p.decide(false, 'the agent exited');
          this.log.append('agent.exited', { code, signal });
        },
        gate: (tool, input) => this.gate(tool, input),
      },
    );
    return driver;
  }

  private finishTurn(state: ConversationState): void {
    this.meta.inFlight = null;
    this.meta.state = state;
    this.save();
    // A failed turn does not block what the user queued next: they may be correcting it.
    this.pump();
  }

  private save(): void {
    this.meta.updatedAt = new Date().toISOString();
    const file = join(this.deps.dir, 'meta.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(this.meta, null, 2));
    renameSync(`${file}.tmp`, file);
  }
}

/** A turn failed if its last word was an error rather than a completion. */
function lastTurnFailed(log: EventLog): boolean {
  const recent = [...log.read(Math.max(1, log.lastSeq - 20))].reverse();
  const end = recent.find((e) => e.type === 'turn.completed' || e.type === 'error' || e.type === 'turn.interrupted' || e.type === 'message.sent');
  return end?.type === 'error' || (end?.type === 'turn.completed' && end.data.isError);
}
