/**
 * @module Claude Code driver: one long-lived `claude -p` process per conversation in stream-json mode, resumed by
 * session id. Claude Code folds a message written mid-turn into the running turn, so the conversation only ever
 * writes the next message after `result`; that keeps each user message its own turn.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { AgentDefinition, AgentDriver, AgentLaunch, DriverEvents } from './driver.js';

interface ContentBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: unknown;
  is_error?: boolean;
}

interface StreamMessage {
  type: string;
  subtype?: string;
  session_id?: string;
  model?: string;
  message?: { content?: ContentBlock[] | string };
  result?: string;
  is_error?: boolean;
  total_cost_usd?: number;
  duration_ms?: number;
  usage?: { input_tokens?: number; output_tokens?: number; cache_read_input_tokens?: number; cache_creation_input_tokens?: number };
  errors?: string[];
  response?: { request_id?: string };
  request_id?: string;
  request?: { subtype?: string; callback_id?: string; input?: { tool_name?: string; tool_input?: unknown } };
}

/** Seconds Claude Code waits on the gate's answer; the conversation's own timeout (which refuses) is shorter. */
const GATE_HOOK_TIMEOUT_S = 3600;

class ClaudeDriver implements AgentDriver {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private sessionId: string | null;
  private inTurn = false;
  private interrupting: NodeJS.Timeout | undefined;
  private requestSeq = 0;

  constructor(
    private readonly launch: AgentLaunch,
    private readonly events: DriverEvents,
  ) {
    this.sessionId = launch.sessionId;
  }

  send(text: string): void {
    const proc = this.proc ?? this.spawn();
    this.inTurn = true;
    proc.stdin.write(JSON.stringify({ type: 'user', message: { role: 'user', content: text }, parent_tool_use_id: null }) + '\n');
  }

  async interrupt(): Promise<void> {
    if (!this.proc || !this.inTurn) return;
    // The control protocol ends the turn and keeps the process (and its context) alive.
    this.proc.stdin.write(JSON.stringify({ type: 'control_request', request_id: `int_${++this.requestSeq}`, request: { subtype: 'interrupt' } }) + '\n');
    const proc = this.proc;
    // If the agent does not honour it promptly, stop the process: the next message resumes the session.
    this.interrupting = setTimeout(() => proc.kill('SIGTERM'), 5000);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    proc.stdin.end();
    const exited = new Promise((r) => proc.once('exit', r));
    const kill = setTimeout(() => proc.kill('SIGTERM'), 3000);
    await exited;
    clearTimeout(kill);
  }

  private spawn(): ChildProcessWithoutNullStreams {
    const args = ['-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions'];
    if (this.launch.model) args.push('--model', this.launch.model);
    if (this.sessionId) args.push(`--resume=${this.sessionId}`);
    const proc = spawn('claude', args, {
      cwd: this.launch.cwd,
      env: { ...process.env, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1', ...this.launch.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = proc;
    // The approval gate sits in front of every shell command, through the control protocol: a PreToolUse hook that
    // Claude Code calls back on this very stream, so nothing on the volume (where the agent writes) takes part.
    proc.stdin.write(JSON.stringify({
      type: 'control_request',
      request_id: `cvm_init_${++this.requestSeq}`,
      request: { subtype: 'initialize', hooks: { PreToolUse: [{ matcher: 'Bash', hookCallbackIds: ['cvm_gate'], timeout: GATE_HOOK_TIMEOUT_S }] } },
    }) + '\n');
    this.events.emit('agent.started', { pid: proc.pid ?? -1, resumed: !!this.sessionId });
    createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(line));
    let stderrTail = '';
    proc.stderr.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-2000)));
    proc.on('error', (e) => this.events.emit('error', { message: `Could not start claude: ${e.message}` }));
    proc.on('exit', (code, signal) => {
      this.proc = undefined;
      clearTimeout(this.interrupting);
      if (this.inTurn) {
        this.inTurn = false;
        const interrupted = this.interrupting !== undefined;
        this.interrupting = undefined;
        if (interrupted) this.events.emit('turn.interrupted', { reason: 'interrupted by the user' });
        else this.events.emit('error', { message: `claude exited mid-turn (${signal ?? `code ${code}`})${stderrTail ? `: ${lastLine(stderrTail)}` : ''}` });
        this.events.turnEnded();
      }
      this.events.exited(code, signal);
    });
    return proc;
  }

  private onLine(line: string): void {
    let m: StreamMessage;
    try {
      m = JSON.parse(line) as StreamMessage;
    } catch {
      return; // Not ours to interpret (a stray log line).
    }
    if (m.session_id && m.session_id !== this.sessionId) {
      this.sessionId = m.session_id;
      this.events.session(m.session_id);
      this.events.emit('session.started', { sessionId: m.session_id, model: m.model ?? null });
    }
    switch (m.type) {
      case 'control_request':
        if (m.request?.subtype === 'hook_callback' && m.request_id) void this.answerGate(m.request_id, m.request.input ?? {});
        break;
      case 'assistant':
        for (const b of blocks(m)) {
          if (b.type === 'text' && b.text) this.events.emit('assistant.text', { text: b.text });
          else if (b.type === 'tool_use') this.events.emit('tool.called', { toolUseId: b.id ?? '', name: b.name ?? '?', input: b.input ?? {} });
        }
        break;
      case 'user':
        for (const b of blocks(m)) {
          if (b.type === 'tool_result') this.events.emit('tool.result', { toolUseId: b.tool_use_id ?? '', output: toolText(b.content), isError: !!b.is_error });
        }
        break;
      case 'result':
        this.endTurn(m);
        break;
    }
  }

  private async answerGate(requestId: string, input: { tool_name?: string; tool_input?: unknown }): Promise<void> {
    const verdict = await this.events.gate(input.tool_name ?? '?', input.tool_input ?? {}).catch((e: Error) => ({ allow: false as const, reason: `the approval gate failed: ${e.message}` }));
    const output = verdict.allow
      ? { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'allow', permissionDecisionReason: 'claude-vm approval gate' } }
      : { decision: 'block', reason: verdict.reason, hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: verdict.reason } };
    this.proc?.stdin.write(JSON.stringify({ type: 'control_response', response: { subtype: 'success', request_id: requestId, response: output } }) + '\n');
  }

  private endTurn(m: StreamMessage): void {
    const interrupted = this.interrupting !== undefined;
    clearTimeout(this.interrupting);
    this.interrupting = undefined;
    if (interrupted) this.events.emit('turn.interrupted', { reason: 'interrupted by the user' });
    else {
      if (m.subtype !== 'success' && m.errors?.length) this.events.emit('error', { message: m.errors.join('; ') });
      const u = m.usage ?? {};
      this.events.emit('turn.completed', {
        result: m.result ?? '',
        isError: !!m.is_error || m.subtype !== 'success',
        costUsd: m.total_cost_usd ?? null,
        inputTokens: (u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0),
        outputTokens: u.output_tokens ?? 0,
        durationMs: m.duration_ms ?? null,
      });
    }
    this.inTurn = false;
    this.events.turnEnded();
  }
}

function blocks(m: StreamMessage): ContentBlock[] {
  const c = m.message?.content;
  return Array.isArray(c) ? c : typeof c === 'string' ? [{ type: 'text', text: c }] : [];
}

/** Tool results are a string or a list of blocks; keep the text, cap the size so one `cat` cannot flood the log. */
function toolText(content: unknown): string {
  const text = typeof content === 'string' ? content
    : Array.isArray(content) ? content.map((b: ContentBlock) => (b.type === 'text' ? b.text ?? '' : `[${b.type}]`)).join('\n')
    : JSON.stringify(content ?? '');
  return text.length > 64_000 ? `${text.slice(0, 64_000)}\n… (${text.length - 64_000} more characters)` : text;
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

export const claudeAgent: AgentDefinition = {
  name: 'claude',
  bin: 'claude',
  create: (launch, events) => new ClaudeDriver(launch, events),
};
