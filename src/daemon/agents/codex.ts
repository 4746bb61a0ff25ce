/**
 * @module Codex driver (@openai/codex 0.169.0). `codex exec` runs ONE turn and exits, so every message is a new
 * process: `codex exec --json … [-m model] -` for the first, `… resume <thread_id> -` after that (the thread id
 * comes from `thread.started`), prompt on stdin. Its JSONL events are mapped onto the shared event model.
 *
 * The approval gate: `codex exec` cannot ask anyone, so approvals stay bypassed and the gate is codex's PreToolUse
 * hook instead (Claude Code's hook contract; every shell tool reports itself as `Bash`). The hook is
 * gate-hook.js, which asks this driver over a GateSocket and refuses with exit 2 and the reason, which codex hands
 * to the model. `--dangerously-bypass-hook-trust` runs it without codex's interactive trust review: the hook is ours.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventPayloads, EventType } from '../../protocol/events.js';
import type { AgentDefinition, AgentDriver, AgentLaunch, DriverEvents } from './driver.js';
import { scrubSecrets, secretValues } from '../scrub.js';
import { GateSocket, gateHookCommand } from './gate-socket.js';

/** The parts of codex's JSONL events (codex-rs/exec/src/exec_events.rs) that this driver reads. */
interface Item {
  id: string; type: string; text?: string; message?: string; status?: string;
  command?: string; aggregated_output?: string; exit_code?: number | null; // command_execution
  changes?: Array<{ path: string; kind: string }>; // file_change
  server?: string; tool?: string; arguments?: unknown; result?: unknown; error?: { message?: string } | null; // mcp_tool_call
}
interface CodexEvent {
  type: string; thread_id?: string; item?: Item; message?: string; error?: { message?: string };
  usage?: { input_tokens?: number; cached_input_tokens?: number; output_tokens?: number };
}

const KILL_AFTER_MS = 3000;
const MAX_OUTPUT = 64_000;
/** Seconds codex waits on the gate hook; the conversation's own approval timeout (which refuses) is shorter. */
const GATE_HOOK_TIMEOUT_S = 3600;

/** What the driver knows about the running turn: why we cut it short, whether codex reported its end, … */
const newTurn = () => ({ stopping: null as string | null, closed: false, lastText: '', lastError: '', startedAt: Date.now(), called: new Set<string>() });

class CodexDriver implements AgentDriver {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private closed: Promise<void> = Promise.resolve();
  private threadId: string | null;
  private turn = newTurn();
  private gateSocket: GateSocket | undefined;
  private refusals = 0;

  constructor(private readonly launch: AgentLaunch, private readonly events: DriverEvents) {
    this.threadId = launch.sessionId;
  }

  send(text: string): void {
    if (this.proc) throw new Error('codex is still running the previous turn'); // the conversation never does this
    // One codex process per turn, so one gate socket per turn too (closed when the process is gone).
    this.gateSocket = new GateSocket(this.launch.stateDir, (tool, input) => this.gate(tool, input));
    const home = this.writeConfig(this.gateSocket.path);
    const args = ['exec', '--json', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox', '--dangerously-bypass-hook-trust'];
    if (this.launch.model) args.push('-m', this.launch.model);
    if (this.threadId) args.push('resume', this.threadId);
    // `-`: the prompt comes on stdin (as in the official SDK), so no argv size limit and a message starting with
    // `-` is not taken for a flag; closing stdin at once keeps codex from waiting for more input.
    args.push('-');
    this.turn = newTurn();
    // detached = own process group: the npm launcher forwards SIGINT to the native binary but cannot forward
    // SIGKILL, so the hard kill goes to the whole group (launcher, codex, the commands it runs).
    const env = { ...process.env, ...this.launch.env, CODEX_HOME: home };
    const proc = spawn('codex', args, { cwd: this.launch.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    proc.stdin.on('error', () => {}); // EPIPE if codex dies at once; its exit tells why
    proc.stdin.end(text);
    if (proc.pid) this.emit('agent.started', { pid: proc.pid, resumed: !!this.threadId });
    createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(line));
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    proc.on('error', (e) => (stderr = `Could not start codex: ${e.message}`));
    // 'close', not 'exit': by then every JSONL line has been handled, so the turn's own end event came first.
    this.closed = new Promise((resolve) => proc.on('close', (code, signal) => (this.finish(code, signal, stderr), resolve())));
  }

  interrupt = () => this.halt('interrupted by the user');
  stop = () => this.halt('the agent was stopped');

  /** SIGINT lets codex end the turn and save the thread (it stays resumable); SIGKILL if it is not gone in 3 s. */
  private async halt(reason: string): Promise<void> {
    const pid = this.proc?.pid;
    if (!pid) return;
    this.turn.stopping ??= reason;
    this.proc?.kill('SIGINT');
    const timer = setTimeout(() => killGroup(pid), KILL_AFTER_MS);
    await this.closed;
    clearTimeout(timer);
  }

  private finish(code: number | null, signal: string | null, stderr: string): void {
    this.proc = undefined;
    void this.gateSocket?.close();
    this.gateSocket = undefined;
    if (!this.turn.closed && this.turn.stopping) this.emit('turn.interrupted', { reason: this.turn.stopping });
    else if (!this.turn.closed) {
      const detail = lastLine(stderr);
      // A lost thread (e.g. CODEX_HOME wiped) would fail every later message too: start afresh next time.
      const lost = this.threadId !== null && /no rollout found/i.test(detail);
      if (lost) this.threadId = null;
      const why = `codex exited (${signal ?? `code ${code}`}) before finishing the turn${detail ? `: ${detail}` : ''}`;
      this.emit('error', { message: lost ? `${why}; the next message starts a new session` : why });
    }
    // exited() before turnEnded(): codex exits after every turn and the conversation forgets a driver that
    // exited, so the next message (sent from turnEnded) gets a fresh driver rather than a forgotten running one.
    this.events.exited(code, signal);
    this.events.turnEnded();
  }

  private onLine(line: string): void {
    let e: CodexEvent;
    try { e = JSON.parse(line) as CodexEvent; } catch { return; } // not an event: stray output
    if (e.type === 'thread.started' && e.thread_id && e.thread_id !== this.threadId) {
      // A resumed run reports its thread again: only a new id is news.
      this.threadId = e.thread_id;
      this.events.session(e.thread_id);
      this.emit('session.started', { sessionId: e.thread_id, model: this.launch.model });
    } else if (e.type === 'item.started' && e.item) this.toolCalled(e.item);
    else if (e.type === 'item.completed' && e.item) this.itemCompleted(e.item);
    else if (e.type === 'turn.completed') {
      this.turn.closed = true;
      // costUsd null: codex reports tokens, not prices. input_tokens already includes cached_input_tokens.
      const { input_tokens: inputTokens = 0, output_tokens: outputTokens = 0 } = e.usage ?? {};
      const durationMs = Date.now() - this.turn.startedAt;
      this.emit('turn.completed', { result: this.turn.lastText, isError: false, costUsd: null, inputTokens, outputTokens, durationMs });
    } else if (e.type === 'turn.failed') {
      this.turn.closed = true;
      this.error(e.error?.message ?? 'codex turn failed', true);
    } else if (e.type === 'error') {
      // Not the end of the turn: codex reports its retries ("Reconnecting... 1/5") this way too.
      this.error(e.message ?? 'codex error', false);
    }
  }

  /**
   * The gate, for the hook. codex reports no item for a command its hook refused, so the refusal is shown here
   * as a failed shell call: the user sees what was refused and why.
   */
  private async gate(tool: string, input: unknown): ReturnType<DriverEvents['gate']> {
    const verdict = await this.events.gate(tool, input);
    if (!verdict.allow) {
      const toolUseId = `gate_${++this.refusals}`;
      this.emit('tool.called', { toolUseId, name: 'shell', input });
      this.emit('tool.result', { toolUseId, output: verdict.reason, isError: true });
    }
    return verdict;
  }

  private itemCompleted(item: Item): void {
    if (item.type === 'agent_message') {
      this.turn.lastText = item.text ?? '';
      if (this.turn.lastText) this.emit('assistant.text', { text: this.turn.lastText });
    } else if (item.type === 'error') {
      // A model unknown to codex (any custom provider's) gets this warning on every run; it is harmless.
      // The hook-trust bypass warns on every run too (twice); the hook it is about is our own approval gate.
      if (!/^Model metadata for .* not found|^`--dangerously-bypass-hook-trust` is enabled/.test(item.message ?? '')) this.error(item.message ?? 'codex error', false);
    } else if (this.toolCalled(item)) {
      let output = JSON.stringify(item.result ?? '');
      if (item.type === 'command_execution') output = item.aggregated_output ?? '';
      if (item.type === 'file_change') output = (item.changes ?? []).map((c) => `${c.kind} ${c.path}`).join('\n');
      if (item.error?.message) output = item.error.message;
      const failed = item.status === 'failed' || item.status === 'declined' || !!item.error;
      const isError = failed || (item.type === 'command_execution' && item.exit_code !== 0);
      this.emit('tool.result', { toolUseId: item.id, output: cap(output), isError });
    }
  }

  /** Emits tool.called once per tool item (an item may be reported only when completed, e.g. a declined one). */
  private toolCalled(item: Item): boolean {
    let call: { name: string; input: unknown } | undefined;
    if (item.type === 'command_execution') call = { name: 'shell', input: { command: item.command ?? '' } };
    if (item.type === 'file_change') call = { name: 'edit', input: { changes: item.changes ?? [] } };
    if (item.type === 'mcp_tool_call') call = { name: `${item.server}.${item.tool}`, input: item.arguments ?? {} };
    if (!call) return false;
    if (!this.turn.called.has(item.id)) this.emit('tool.called', { toolUseId: item.id, ...call });
    this.turn.called.add(item.id);
    return true;
  }

  /** turn.failed repeats the `error` codex sent just before; one error event is enough. */
  private error(message: string, final: boolean): void {
    if (!final || message !== this.turn.lastError) this.emit('error', { message });
    this.turn.lastError = message;
  }

  /** Events are stored and shown: no launch env value (API key, a base URL with credentials) may be in one,
   *  whether it came via codex's stderr or a command the model ran (`env`). */
  private emit<T extends EventType>(type: T, data: EventPayloads[T]): void {
    this.events.emit(type, scrubSecrets(data, secretValues(this.launch.env)));
  }

  /**
   * $CODEX_HOME/config.toml: the model server from launch.env; no analytics (offline it delays exit by ~5 s); the
   * approval gate as a PreToolUse hook on every shell command.
   */
  private writeConfig(gateSocket: string): string {
    const home = join(this.launch.stateDir, 'codex-home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const q = (s: string) => JSON.stringify(s); // a JSON string is a valid TOML basic string
    const baseUrl = this.launch.env.OPENAI_BASE_URL;
    const lines: string[] = []; // no model here: `-m` sets it, else codex uses its own default
    // codex ignores the OPENAI_BASE_URL variable and a redefined built-in provider (openai/codex#11698), so a
    // base URL needs a provider of our own. The key stays in the env; the file only names its variable.
    if (baseUrl) lines.push('model_provider = "claudevm"', '[model_providers.claudevm]', 'name = "claude-vm"',
      `base_url = ${q(baseUrl)}`, 'env_key = "OPENAI_API_KEY"', 'wire_api = "responses"');
    lines.push('[analytics]', 'enabled = false');
    lines.push('[[hooks.PreToolUse]]', 'matcher = "Bash"', '[[hooks.PreToolUse.hooks]]', 'type = "command"',
      `command = ${q(gateHookCommand(gateSocket))}`, `timeout = ${GATE_HOOK_TIMEOUT_S}`);
    writeFileSync(join(home, 'config.toml'), lines.join('\n') + '\n', { mode: 0o600 });
    return home;
  }
}

const killGroup = (pid: number) => { try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ } };
const cap = (s: string) => (s.length > MAX_OUTPUT ? `${s.slice(0, MAX_OUTPUT)}\n… (${s.length - MAX_OUTPUT} more characters)` : s);

/** The last stderr line worth showing: codex prints harmless WARNING lines, and a backtrace after its error. */
const lastLine = (s: string) =>
  s.split('Stack backtrace:')[0]!.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('WARNING:') && !l.startsWith('Reading additional input')).pop() ?? '';

export const codexAgent: AgentDefinition = {
  name: 'codex',
  bin: 'codex',
  create: (launch, events) => new CodexDriver(launch, events),
};
