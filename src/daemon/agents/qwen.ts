/**
 * @module Qwen Code driver (@qwen-code/qwen-code 0.24.4): one long-lived process per conversation,
 * `qwen --input-format stream-json --output-format stream-json --approval-mode default --auth-type openai [-m model]
 * [--resume <session>]`, one user message per line on stdin. Its output is Claude-Code-like stream-json
 * (`system`/init, `assistant` with text and tool_use blocks, `user` with tool_result blocks, `result`).
 *
 * Observed with 0.24.4 (see test/qwen-driver.test.ts):
 *  - Nothing is printed until the first message arrives; `system`/init (with session_id) then comes once per turn.
 *  - The model server comes from OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL (launch.env).
 *  - By default it runs a background "memory extraction" model call after turns, and holds the turn's `result`
 *    until it is done; the private $QWEN_HOME/settings.json written here turns that off (and telemetry).
 *    Sessions are stored under $QWEN_HOME too, so `--resume <id>` works as long as launch.stateDir is kept.
 *  - The `interrupt` control request is accepted but does not stop a running tool call, so an interrupt is SIGINT
 *    to the process group, then SIGKILL after 3 s; the session survives and the next message resumes it.
 *  - `result.usage` is cumulative over the session; per-turn tokens are summed from the turn's assistant messages.
 *
 * The approval gate: in stream-json input mode qwen asks its host about every tool call that needs confirmation
 * with a `can_use_tool` control_request (Claude's SDK protocol) and waits for the control_response. The approval
 * mode is `default` rather than `yolo`, and the private settings add a `Bash` ask rule, because qwen would
 * otherwise run the shell commands it judges read-only without asking (`cat ~/.codex/auth.json` among them).
 * Other tools (file edits) are allowed as they come. qwen waits at most 10 minutes for an answer (its maximum,
 * set by the initialize request); then it cancels the call, which refuses it like the gate's own timeout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventPayloads, EventType } from '../../protocol/events.js';
import type { AgentDefinition, AgentDriver, AgentLaunch, DriverEvents } from './driver.js';
import { scrubSecrets, secretValues } from '../scrub.js';

interface ContentBlock {
  type: string; text?: string; id?: string; name?: string; input?: unknown;
  tool_use_id?: string; content?: unknown; is_error?: boolean;
}
interface Usage { input_tokens?: number; output_tokens?: number; cache_read_input_tokens?: number }
interface StreamMessage {
  type: string; subtype?: string; session_id?: string; model?: string;
  request_id?: string; request?: { subtype?: string; tool_name?: string; input?: unknown };
  message?: { content?: ContentBlock[] | string; usage?: Usage };
  result?: string; is_error?: boolean; duration_ms?: number; error?: { message?: string };
}

const KILL_AFTER_MS = 3000;
const MAX_OUTPUT = 64_000;
/** The longest qwen 0.24.4 accepts for `timeout.canUseTool`; the conversation's approval timeout may be longer. */
const CAN_USE_TOOL_TIMEOUT_MS = 600_000;

/** What the driver knows about the running turn. */
const newTurn = () => ({ stopping: null as string | null, inputTokens: 0, outputTokens: 0, startedAt: Date.now() });

class QwenDriver implements AgentDriver {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private closed: Promise<void> = Promise.resolve();
  private sessionId: string | null;
  private turn: ReturnType<typeof newTurn> | null = null;

  constructor(private readonly launch: AgentLaunch, private readonly events: DriverEvents) {
    this.sessionId = launch.sessionId;
  }

  send(text: string): void {
    if (this.turn) throw new Error('qwen is still running the previous turn'); // the conversation never does this
    const proc = this.proc ?? this.spawn();
    this.turn = newTurn();
    proc.stdin.write(JSON.stringify({ type: 'user', message: { role: 'user', content: text }, parent_tool_use_id: null }) + '\n');
  }

  async interrupt(): Promise<void> {
    if (this.turn) await this.halt('interrupted by the user');
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    if (this.turn) return this.halt('the agent was stopped');
    proc.stdin.end(); // idle: end of input makes qwen exit on its own
    const timer = setTimeout(() => killGroup(proc.pid, 'SIGKILL'), KILL_AFTER_MS);
    await this.closed;
    clearTimeout(timer);
  }

  /** SIGINT to the whole group (qwen and the commands it runs), SIGKILL if it is not gone in 3 s. */
  private async halt(reason: string): Promise<void> {
    const pid = this.proc?.pid;
    if (!pid || !this.turn) return;
    this.turn.stopping ??= reason;
    killGroup(pid, 'SIGINT');
    const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_AFTER_MS);
    await this.closed;
    clearTimeout(timer);
  }

  private spawn(): ChildProcessWithoutNullStreams {
    const home = this.writeSettings();
    const args = ['--input-format', 'stream-json', '--output-format', 'stream-json', '--approval-mode', 'default', '--auth-type', 'openai'];
    const model = this.launch.model ?? this.launch.env.OPENAI_MODEL ?? null;
    if (model) args.push('--model', model);
    if (this.sessionId) args.push('--resume', this.sessionId);
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.launch.env, QWEN_HOME: home };
    if (model) env.OPENAI_MODEL = model;
    // detached = own process group, so an interrupt reaches the shell commands qwen started too.
    const proc = spawn('qwen', args, { cwd: this.launch.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    proc.stdin.on('error', () => {}); // EPIPE if qwen dies at once; its exit tells why
    // Only to raise how long qwen waits on a can_use_tool answer (the default, one minute, is too short for a person).
    this.write({ type: 'control_request', request_id: 'cvm_init', request: { subtype: 'initialize', timeout: { canUseTool: CAN_USE_TOOL_TIMEOUT_MS } } });
    if (proc.pid) this.emit('agent.started', { pid: proc.pid, resumed: !!this.sessionId });
    createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(line));
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    proc.on('error', (e) => (stderr = `Could not start qwen: ${e.message}`));
    // 'close', not 'exit': by then every stdout line has been handled.
    this.closed = new Promise((resolve) => proc.on('close', (code, signal) => (this.finish(code, signal, stderr), resolve())));
    return proc;
  }

  private finish(code: number | null, signal: string | null, stderr: string): void {
    this.proc = undefined;
    const turn = this.turn;
    this.turn = null;
    if (turn?.stopping) this.emit('turn.interrupted', { reason: turn.stopping });
    else if (turn) {
      const detail = lastLine(stderr);
      this.emit('error', { message: `qwen exited (${signal ?? `code ${code}`}) before finishing the turn${detail ? `: ${detail}` : ''}` });
    }
    // exited() before turnEnded(): the conversation forgets a driver that exited, so the next message (sent from
    // turnEnded) gets a fresh driver that resumes the session.
    this.events.exited(code, signal);
    if (turn) this.events.turnEnded();
  }

  private onLine(line: string): void {
    let m: StreamMessage;
    try { m = JSON.parse(line) as StreamMessage; } catch { return; } // not an event: stray output
    if (m.session_id && m.session_id !== this.sessionId) {
      // A resumed run reports the same id again: only a new id is news.
      this.sessionId = m.session_id;
      this.events.session(m.session_id);
      this.emit('session.started', { sessionId: m.session_id, model: m.model ?? this.launch.model });
    }
    if (m.type === 'control_request' && m.request_id) return void this.answer(m.request_id, m.request ?? {});
    const turn = this.turn;
    if (!turn || turn.stopping) return; // nothing is asked of qwen, or the turn is being cut short
    switch (m.type) {
      case 'assistant': {
        const u = m.message?.usage ?? {};
        turn.inputTokens += (u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
        turn.outputTokens += u.output_tokens ?? 0;
        for (const b of blocks(m)) {
          if (b.type === 'text' && b.text) this.emit('assistant.text', { text: b.text });
          else if (b.type === 'tool_use') this.emit('tool.called', { toolUseId: b.id ?? '', name: b.name ?? '?', input: b.input ?? {} });
        }
        break;
      }
      case 'user':
        for (const b of blocks(m)) {
          if (b.type === 'tool_result') this.emit('tool.result', { toolUseId: b.tool_use_id ?? '', output: cap(toolText(b.content)), isError: !!b.is_error });
        }
        break;
      case 'result': {
        const failed = !!m.is_error || m.subtype !== 'success';
        if (failed && m.error?.message) this.emit('error', { message: m.error.message });
        this.emit('turn.completed', {
          result: m.result ?? '', isError: failed, costUsd: null, // qwen reports tokens, not prices
          inputTokens: turn.inputTokens, outputTokens: turn.outputTokens, durationMs: m.duration_ms ?? Date.now() - turn.startedAt,
        });
        this.turn = null;
        this.events.turnEnded();
        break;
      }
    }
  }

  /**
   * qwen's questions to its host. A tool call that runs a command goes through the approval gate (as `Bash`, the
   * name the gate's rules know); any other tool call is allowed, as in yolo mode. A refusal's message is what the
   * model reads as the tool's result.
   */
  private async answer(requestId: string, request: NonNullable<StreamMessage['request']>): Promise<void> {
    if (request.subtype !== 'can_use_tool') {
      this.write({ type: 'control_response', response: { subtype: 'error', request_id: requestId, error: `claude-vm does not handle ${request.subtype}` } });
      return;
    }
    const command = (request.input as { command?: unknown } | undefined)?.command;
    const verdict = typeof command === 'string'
      ? await this.events.gate('Bash', { command }).catch((e: Error) => ({ allow: false as const, reason: `the approval gate failed: ${e.message}` }))
      : { allow: true as const };
    const response = verdict.allow ? { behavior: 'allow' } : { behavior: 'deny', message: verdict.reason };
    this.write({ type: 'control_response', response: { subtype: 'success', request_id: requestId, response } });
  }

  private write(message: unknown): void {
    this.proc?.stdin.write(JSON.stringify(message) + '\n');
  }

  /** Events are stored and shown: no launch env value (API key, a base URL with credentials) may be in one. */
  private emit<T extends EventType>(type: T, data: EventPayloads[T]): void {
    this.events.emit(type, scrubSecrets(data, secretValues(this.launch.env)));
  }

  /** $QWEN_HOME/settings.json: no background memory calls (they hold up `result`), no telemetry. */
  private writeSettings(): string {
    const home = join(this.launch.stateDir, 'qwen-home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const settings = {
      // Every shell command is put to the host (the approval gate), including those qwen itself deems read-only.
      permissions: { ask: ['Bash'] },
      memory: { enableManagedAutoMemory: false, enableManagedAutoDream: false },
      telemetry: { enabled: false },
    };
    writeFileSync(join(home, 'settings.json'), JSON.stringify(settings, null, 2) + '\n', { mode: 0o600 });
    return home;
  }
}

function blocks(m: StreamMessage): ContentBlock[] {
  const c = m.message?.content;
  return Array.isArray(c) ? c : typeof c === 'string' ? [{ type: 'text', text: c }] : [];
}

/** Tool results are a string or a list of blocks; keep the text. */
function toolText(content: unknown): string {
  return typeof content === 'string' ? content
    : Array.isArray(content) ? content.map((b: ContentBlock) => (b.type === 'text' ? b.text ?? '' : `[${b.type}]`)).join('\n')
    : JSON.stringify(content ?? '');
}

const killGroup = (pid: number | undefined, signal: NodeJS.Signals) => { if (pid) try { process.kill(-pid, signal); } catch { /* already gone */ } };
const cap = (s: string) => (s.length > MAX_OUTPUT ? `${s.slice(0, MAX_OUTPUT)}\n… (${s.length - MAX_OUTPUT} more characters)` : s);
/** The last stderr line worth showing (qwen prints notices such as the ripgrep fallback). */
const lastLine = (s: string) => s.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('Ripgrep not available')).pop() ?? '';

export const qwenAgent: AgentDefinition = {
  name: 'qwen',
  bin: 'qwen',
  create: (launch, events) => new QwenDriver(launch, events),
};
