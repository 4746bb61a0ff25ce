/**
 * @module Gemini CLI driver (@google/gemini-cli 0.61.0). Headless `gemini -p` runs ONE turn and exits, so every
 * message is a new process: `gemini -p '' -o stream-json --yolo --skip-trust [-m model] [-r <session_id>]`, the
 * prompt on stdin (`-p` is appended to it, so an empty `-p` just selects headless mode; no argv limit, and a
 * message starting with `-` is not taken for a flag). `-r` takes the full session UUID from the `init` event.
 *
 * Its config and sessions live under $GEMINI_CLI_HOME/.gemini (the CLI's own "home" override), which we point at
 * launch.stateDir/gemini-home: the settings.json there selects API-key auth (GOOGLE_GEMINI_BASE_URL alone would
 * select "gateway" auth, which headless mode rejects with exit 41) and turns off usage statistics and update
 * checks. The user's own ~/.gemini (OAuth login, extensions, GEMINI.md memory) is therefore NOT used.
 *
 * The approval gate: headless mode cannot ask anyone (hence `--yolo`), so the gate is a BeforeTool hook in that
 * settings.json on `run_shell_command`: gate-hook.js asks this driver over a GateSocket and refuses with exit 2
 * and the reason, which gemini reports as the tool's error and hands to the model.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventPayloads, EventType } from '../../protocol/events.js';
import type { AgentDefinition, AgentDriver, AgentLaunch, DriverEvents } from './driver.js';
import { scrubSecrets, secretValues } from '../scrub.js';
import { GateSocket, gateHookCommand } from './gate-socket.js';

/** gemini-cli's stream-json events (packages/core/src/output/types.ts), the fields this driver reads. */
interface GeminiEvent {
  type: string; session_id?: string; model?: string; // init
  role?: string; content?: string; delta?: boolean; // message
  tool_name?: string; tool_id?: string; parameters?: unknown; // tool_use
  status?: string; output?: string; error?: { type?: string; message?: string }; // tool_result, result
  severity?: string; message?: string; // error
  stats?: { input_tokens?: number; output_tokens?: number };
}

const KILL_AFTER_MS = 3000;
const GATE_HOOK_TIMEOUT_MS = 3_600_000;
const MAX_OUTPUT = 64_000;
/** With a custom base URL and no model, gemini first asks a router model (gemini-3.5-flash-lite) to pick one. */
const DEFAULT_MODEL_WITH_BASE_URL = 'gemini-2.5-flash';

const newTurn = () => ({ stopping: null as string | null, closed: false, text: '', lastText: '', lastError: '', startedAt: Date.now() });

class GeminiDriver implements AgentDriver {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private closed: Promise<void> = Promise.resolve();
  private sessionId: string | null;
  private turn = newTurn();
  private gateSocket: GateSocket | undefined;

  constructor(private readonly launch: AgentLaunch, private readonly events: DriverEvents) {
    this.sessionId = launch.sessionId;
  }

  private get model(): string | null {
    return this.launch.model ?? (this.launch.env.GOOGLE_GEMINI_BASE_URL ? DEFAULT_MODEL_WITH_BASE_URL : null);
  }

  send(text: string): void {
    if (this.proc) throw new Error('gemini is still running the previous turn'); // the conversation never does this
    // One gemini process per turn, so one gate socket per turn too (closed when the process is gone).
    // gemini names its shell tool run_shell_command; the gate's rules know it as Bash.
    this.gateSocket = new GateSocket(this.launch.stateDir, (tool, input) => this.events.gate(tool === 'run_shell_command' ? 'Bash' : tool, input));
    const home = this.writeSettings(this.gateSocket.path);
    const args = ['-p', '', '-o', 'stream-json', '--yolo', '--skip-trust'];
    if (this.model) args.push('-m', this.model);
    if (this.sessionId) args.push('-r', this.sessionId);
    this.turn = newTurn();
    // detached = own process group: gemini relaunches itself in a child node process (memory flags), and the
    // hard kill must reach both and the commands they run.
    const env = { ...process.env, ...this.launch.env, GEMINI_CLI_HOME: home };
    const proc = spawn('gemini', args, { cwd: this.launch.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    proc.stdin.on('error', () => {}); // EPIPE if gemini dies at once; its exit tells why
    proc.stdin.end(text);
    if (proc.pid) this.emit('agent.started', { pid: proc.pid, resumed: !!this.sessionId });
    createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(line));
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    proc.on('error', (e) => (stderr = `Could not start gemini: ${e.message}`));
    // 'close', not 'exit': by then every stream-json line has been handled.
    this.closed = new Promise((resolve) => proc.on('close', (code, signal) => (this.finish(code, signal, stderr), resolve())));
  }

  interrupt = () => this.halt('interrupted by the user');
  stop = () => this.halt('the agent was stopped');

  /** SIGINT to the whole group, as a terminal's Ctrl-C would; SIGKILL to the group if it is not gone in 3 s.
   *  gemini runs each shell command in a process group of its own and leaves it running when it exits on
   *  SIGINT, so every process below gemini at the time of the interrupt is killed once gemini is gone. */
  private async halt(reason: string): Promise<void> {
    const pid = this.proc?.pid;
    if (!pid) return;
    this.turn.stopping ??= reason;
    const below = descendants(pid);
    signalGroup(pid, 'SIGINT');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_AFTER_MS);
    await this.closed;
    clearTimeout(timer);
    for (const p of below) { try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ } }
  }

  private finish(code: number | null, signal: string | null, stderr: string): void {
    this.proc = undefined;
    void this.gateSocket?.close();
    this.gateSocket = undefined;
    this.flushText();
    if (!this.turn.closed && this.turn.stopping) this.emit('turn.interrupted', { reason: this.turn.stopping });
    else if (!this.turn.closed) {
      const detail = lastLine(stderr);
      // A lost session (state dir wiped) would fail every later message too: start afresh next time.
      const lost = this.sessionId !== null && /Invalid session identifier|No previous sessions/i.test(stderr);
      if (lost) this.sessionId = null;
      const why = `gemini exited (${signal ?? `code ${code}`}) before finishing the turn${detail ? `: ${detail}` : ''}`;
      this.error(lost ? `${why}; the next message starts a new session` : why, true);
    }
    // exited() before turnEnded(): gemini exits after every turn and the conversation forgets a driver that
    // exited, so the next message (sent from turnEnded) gets a fresh driver.
    this.events.exited(code, signal);
    this.events.turnEnded();
  }

  private onLine(line: string): void {
    let e: GeminiEvent;
    try { e = JSON.parse(line) as GeminiEvent; } catch { return; } // not an event: stray output
    if (e.type === 'init' && e.session_id && e.session_id !== this.sessionId) {
      // A resumed run reports its session again: only a new id is news.
      this.sessionId = e.session_id;
      this.events.session(e.session_id);
      this.emit('session.started', { sessionId: e.session_id, model: e.model ?? this.model });
    } else if (e.type === 'message' && e.role === 'assistant') {
      // Streamed as `delta: true` chunks: one assistant.text per message, sent when something else happens.
      this.turn.text += e.content ?? '';
      if (!e.delta) this.flushText();
    } else if (e.type === 'tool_use') {
      this.flushText();
      this.emit('tool.called', { toolUseId: e.tool_id ?? '', name: e.tool_name ?? 'unknown', input: e.parameters ?? {} });
    } else if (e.type === 'tool_result') {
      const isError = e.status !== 'success';
      const output = isError && e.error?.message ? e.error.message : e.output ?? '';
      this.emit('tool.result', { toolUseId: e.tool_id ?? '', output: cap(output), isError });
    } else if (e.type === 'error') {
      this.flushText();
      // Warnings (e.g. a loop detected, a retry) do not end the turn and are not failures.
      if (e.severity !== 'warning') this.error(e.message ?? 'gemini error', false);
    } else if (e.type === 'result') {
      this.flushText();
      this.turn.closed = true;
      if (e.status === 'success') {
        // costUsd null: gemini reports tokens, not prices. input_tokens includes the cached ones.
        const { input_tokens: inputTokens = 0, output_tokens: outputTokens = 0 } = e.stats ?? {};
        const durationMs = Date.now() - this.turn.startedAt;
        this.emit('turn.completed', { result: this.turn.lastText, isError: false, costUsd: null, inputTokens, outputTokens, durationMs });
      } else if (this.turn.stopping) this.emit('turn.interrupted', { reason: this.turn.stopping });
      else this.error(e.error?.message ?? 'gemini turn failed', true);
    }
  }

  private flushText(): void {
    if (!this.turn.text) return;
    this.turn.lastText = this.turn.text;
    this.turn.text = '';
    this.emit('assistant.text', { text: this.turn.lastText });
  }

  /** A failed result repeats the error gemini sent just before; one error event is enough. */
  private error(message: string, final: boolean): void {
    if (!final || message !== this.turn.lastError) this.emit('error', { message });
    this.turn.lastError = message;
  }

  /** Events are stored and shown: no launch env value (API key, a base URL with credentials) may be in one. */
  private emit<T extends EventType>(type: T, data: EventPayloads[T]): void {
    this.events.emit(type, scrubSecrets(data, secretValues(this.launch.env)));
  }

  /**
   * $GEMINI_CLI_HOME/.gemini/settings.json. The key stays in the env (GEMINI_API_KEY); the file has no secret.
   * The approval gate's hook waits up to an hour (in ms): the conversation's own approval timeout, which refuses,
   * comes first. gemini treats a hook that times out or fails as no objection, hence the long wait.
   */
  private writeSettings(gateSocket: string): string {
    const home = join(this.launch.stateDir, 'gemini-home');
    mkdirSync(join(home, '.gemini'), { recursive: true, mode: 0o700 });
    const env = { ...process.env, ...this.launch.env };
    const settings: Record<string, unknown> = {
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
      privacy: { usageStatisticsEnabled: false },
      hooks: { BeforeTool: [{ matcher: 'run_shell_command', hooks: [{ type: 'command', command: gateHookCommand(gateSocket), timeout: GATE_HOOK_TIMEOUT_MS }] }] },
    };
    // Vertex AI (GOOGLE_GENAI_USE_VERTEXAI) or a Google login choose their own auth type.
    if (env.GEMINI_API_KEY) settings.security = { auth: { selectedType: 'gemini-api-key' } };
    writeFileSync(join(home, '.gemini', 'settings.json'), JSON.stringify(settings, null, 2) + '\n', { mode: 0o600 });
    return home;
  }
}

/** Every process below `root` (Linux /proc; none elsewhere), children before grandchildren. */
function descendants(root: number): number[] {
  const parent = new Map<number, number[]>();
  let entries: string[] = [];
  try { entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return []; }
  for (const d of entries) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]); // after "pid (comm) state"
      parent.set(ppid, [...(parent.get(ppid) ?? []), Number(d)]);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  for (let i = 0, todo = [root]; i < todo.length; i++) for (const c of parent.get(todo[i]!) ?? []) (out.push(c), todo.push(c));
  return out;
}

const signalGroup = (pid: number, signal: NodeJS.Signals) => { try { process.kill(-pid, signal); } catch { /* already gone */ } };
const cap = (s: string) => (s.length > MAX_OUTPUT ? `${s.slice(0, MAX_OUTPUT)}\n… (${s.length - MAX_OUTPUT} more characters)` : s);

/** The last stderr line worth showing: gemini prints notices (YOLO mode, 256 colours, ripgrep) on every run. */
const NOISE = /^(YOLO mode is enabled|Warning: 256-color|Ripgrep is not available|Could not verify the current directory|Loaded cached credentials)/;
const lastLine = (s: string) => s.split('\n').map((l) => l.trim()).filter((l) => l && !NOISE.test(l) && !/^at /.test(l)).pop() ?? '';

export const geminiAgent: AgentDefinition = {
  name: 'gemini',
  bin: 'gemini',
  create: (launch, events) => new GeminiDriver(launch, events),
};
