/**
 * @module opencode driver (opencode-ai 1.18.33). `opencode run` runs ONE turn and exits, so every message is a
 * new process: `opencode run --format json --auto [-m model] --title` for the first (a new session), `… --session
 * <id>` after that, the prompt on stdin (no argv limit, a message starting with `-` is not a flag). Its JSON lines
 * (`step_start`, `text`, `tool_use`, `step_finish`, `error`, each with `sessionID`) are mapped onto the shared events.
 *
 * Observed with 1.18.33 (see test/opencode-driver.test.ts):
 *  - With launch.env.OPENCODE_BASE_URL (`agent set opencode --base-url`), a private $OPENCODE_CONFIG in
 *    launch.stateDir defines provider "claudevm" (`@ai-sdk/openai-compatible`, bundled: nothing is downloaded).
 *    Its baseURL and apiKey are `{env:…}` references that opencode fills in from the environment, so neither the
 *    URL nor the key is written to disk. Without a base URL no provider is defined: `-m` is passed as given
 *    (e.g. `anthropic/claude-…` with that provider's key in the env).
 *  - A new session normally costs an extra model request for its title (sent before the real one). `--title` with
 *    no value makes opencode use the truncated prompt as the title instead, so every request is the turn's own.
 *  - Sessions live in opencode's data dir ($XDG_DATA_HOME or ~/.local/share/opencode/opencode.db), which outlives
 *    the conversation's processes, so `--session <id>` continues them with no private data dir.
 *  - There is no end-of-turn event: a clean exit (code 0) ends the turn; usage is summed from `step_finish`.
 *  - `tool_use` is printed only once the tool finished (status completed or error), so tool.called and
 *    tool.result come together.
 *  - SIGINT/SIGTERM kill opencode at once, but the `bash` tool runs its commands in their own session (setsid),
 *    which a signal to opencode's process group does not reach. An interrupt therefore signals opencode's group
 *    AND the group of every descendant (found in /proc) with SIGINT, then SIGKILL after 3 s. The session survives
 *    the interrupt (the unfinished step is dropped) and the next message continues it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventPayloads, EventType } from '../../protocol/events.js';
import type { AgentDefinition, AgentDriver, AgentLaunch, DriverEvents } from './driver.js';
import { scrubSecrets, secretValues } from '../scrub.js';
import { GateSocket } from './gate-socket.js';

/** The gate plugin opencode loads from its private config (opencode-gate-plugin.ts, next to this module once built). */
const GATE_PLUGIN = new URL('./opencode-gate-plugin.js', import.meta.url).href;

interface ToolPart {
  tool?: string; callID?: string; id?: string;
  state?: { status?: string; input?: unknown; output?: string; error?: string };
}
interface OpencodeEvent {
  type: string; sessionID?: string;
  part?: ToolPart & {
    text?: string; reason?: string; cost?: number;
    tokens?: { input?: number; output?: number; reasoning?: number; cache?: { read?: number; write?: number } };
  };
  error?: { name?: string; message?: string; data?: { message?: string } };
}

const KILL_AFTER_MS = 3000;
const MAX_OUTPUT = 64_000;
/** The provider id in the private opencode.json. */
const PROVIDER = 'claudevm';

const newTurn = () => ({
  stopping: null as string | null, lastText: '', errors: [] as string[], steps: 0,
  inputTokens: 0, outputTokens: 0, costUsd: 0, startedAt: Date.now(),
});

class OpencodeDriver implements AgentDriver {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private closed: Promise<void> = Promise.resolve();
  private sessionId: string | null;
  private turn = newTurn();
  private gateSocket: GateSocket | undefined;

  constructor(private readonly launch: AgentLaunch, private readonly events: DriverEvents) {
    this.sessionId = launch.sessionId;
  }

  send(text: string): void {
    if (this.proc) throw new Error('opencode is still running the previous turn'); // the conversation never does this
    // One opencode process per turn, so one gate socket per turn too (closed when the process is gone).
    this.gateSocket = new GateSocket(this.launch.stateDir, (tool, input) => this.events.gate(tool, input));
    const { args, env } = this.prepare(this.gateSocket.path);
    this.turn = newTurn();
    // detached = own process group, so an interrupt reaches opencode's helpers too (its tools: see halt()).
    const proc = spawn('opencode', args, { cwd: this.launch.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    proc.stdin.on('error', () => {}); // EPIPE if opencode dies at once; its exit tells why
    proc.stdin.end(text);
    if (proc.pid) this.emit('agent.started', { pid: proc.pid, resumed: !!this.sessionId });
    createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(line));
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    proc.on('error', (e) => (stderr = `Could not start opencode: ${e.message}`));
    // 'close', not 'exit': by then every JSON line has been handled.
    this.closed = new Promise((resolve) => proc.on('close', (code, signal) => (this.finish(code, signal, stderr), resolve())));
  }

  interrupt = () => this.halt('interrupted by the user');
  stop = () => this.halt('the agent was stopped');

  /** SIGINT to opencode's group and to its tools' own groups; SIGKILL to all of them if not gone in 3 s. */
  private async halt(reason: string): Promise<void> {
    const pid = this.proc?.pid;
    if (!pid) return;
    this.turn.stopping ??= reason;
    const groups = new Set([pid, ...descendantGroups(pid)]);
    groups.forEach((g) => killGroup(g, 'SIGINT'));
    const timer = setTimeout(() => {
      descendantGroups(pid).forEach((g) => groups.add(g));
      groups.forEach((g) => killGroup(g, 'SIGKILL'));
    }, KILL_AFTER_MS);
    await this.closed;
    clearTimeout(timer);
    // opencode dies of SIGINT at once, leaving its tool commands behind; make sure they go too.
    groups.forEach((g) => killGroup(g, 'SIGKILL'));
  }

  private finish(code: number | null, signal: string | null, stderr: string): void {
    this.proc = undefined;
    void this.gateSocket?.close();
    this.gateSocket = undefined;
    const turn = this.turn;
    if (turn.stopping) this.emit('turn.interrupted', { reason: turn.stopping });
    else if (code === 0 || turn.errors.length) {
      const isError = code !== 0 || turn.errors.length > 0;
      this.emit('turn.completed', {
        result: turn.lastText, isError, costUsd: turn.steps ? turn.costUsd : null,
        inputTokens: turn.inputTokens, outputTokens: turn.outputTokens, durationMs: Date.now() - turn.startedAt,
      });
    } else {
      const detail = lastLine(stderr);
      this.emit('error', { message: `opencode exited (${signal ?? `code ${code}`}) before finishing the turn${detail ? `: ${detail}` : ''}` });
    }
    // exited() before turnEnded(): opencode exits after every turn and the conversation forgets a driver that
    // exited, so the next message (sent from turnEnded) gets a fresh driver that continues the session.
    this.events.exited(code, signal);
    this.events.turnEnded();
  }

  private onLine(line: string): void {
    let e: OpencodeEvent;
    try { e = JSON.parse(line) as OpencodeEvent; } catch { return; } // not an event: stray output
    if (e.sessionID && e.sessionID !== this.sessionId) {
      // A continued session reports the same id again: only a new id is news.
      this.sessionId = e.sessionID;
      this.events.session(e.sessionID);
      this.emit('session.started', { sessionId: e.sessionID, model: this.model() });
    }
    const turn = this.turn;
    if (turn.stopping) return; // the turn is being cut short
    const part = e.part ?? {};
    switch (e.type) {
      case 'text':
        if (part.text) {
          turn.lastText = part.text;
          this.emit('assistant.text', { text: part.text });
        }
        break;
      case 'tool_use': {
        const id = part.callID ?? part.id ?? '';
        const state = part.state ?? {};
        this.emit('tool.called', { toolUseId: id, name: part.tool ?? '?', input: state.input ?? {} });
        const failed = state.status === 'error';
        this.emit('tool.result', { toolUseId: id, output: cap((failed ? state.error : state.output) ?? ''), isError: failed });
        break;
      }
      case 'step_finish': {
        const t = part.tokens ?? {};
        turn.steps++;
        turn.inputTokens += (t.input ?? 0) + (t.cache?.read ?? 0);
        turn.outputTokens += (t.output ?? 0) + (t.reasoning ?? 0);
        turn.costUsd += part.cost ?? 0;
        break;
      }
      case 'error': {
        const message = e.error?.data?.message ?? e.error?.message ?? e.error?.name ?? 'opencode error';
        turn.errors.push(message);
        this.emit('error', { message });
        break;
      }
    }
  }

  /** The model id as given (launch.model, else OPENCODE_MODEL from `agent set`). */
  private model(): string | null {
    return this.launch.model ?? this.launch.env.OPENCODE_MODEL ?? null;
  }

  /** The private opencode.json, the command line and the environment for one turn. */
  private prepare(gateSocket: string): { args: string[]; env: NodeJS.ProcessEnv } {
    const dir = join(this.launch.stateDir, 'opencode');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const model = this.model();
    const custom = !!this.launch.env.OPENCODE_BASE_URL;
    const keyVar = ['OPENCODE_API_KEY', 'OPENAI_API_KEY'].find((k) => this.launch.env[k]) ?? 'OPENAI_API_KEY';
    // With our own provider, the model id is whatever the gateway calls it ('default' if none was set).
    const qualified = custom ? `${PROVIDER}/${model ?? 'default'}` : model;
    const config: Record<string, unknown> = {
      $schema: 'https://opencode.ai/config.json',
      autoupdate: false,
      share: 'disabled',
      permission: { bash: 'allow', edit: 'allow', webfetch: 'allow', external_directory: 'allow', doom_loop: 'allow' },
      // opencode asks nobody (`run --auto`); every shell command meets the approval gate through this plugin instead.
      plugin: [GATE_PLUGIN],
    };
    if (custom) {
      config.provider = {
        [PROVIDER]: {
          npm: '@ai-sdk/openai-compatible',
          name: 'claude-vm',
          // {env:…}: opencode substitutes these when it loads the file, so no URL or key is stored on disk.
          options: { baseURL: '{env:OPENCODE_BASE_URL}', apiKey: `{env:${keyVar}}` },
          models: { [model ?? 'default']: { tool_call: true } },
        },
      };
    }
    if (qualified) Object.assign(config, { model: qualified, small_model: qualified });
    const configPath = join(dir, 'opencode.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });

    const args = ['run', '--format', 'json', '--auto'];
    if (qualified) args.push('-m', qualified);
    // A new session: `--title` with no value = the truncated prompt, instead of an extra title request to the model.
    args.push(...(this.sessionId ? ['--session', this.sessionId] : ['--title']));
    const env: NodeJS.ProcessEnv = {
      // opencode takes its project directory from PWD, which the daemon inherited from wherever it started.
      ...process.env, ...this.launch.env, PWD: this.launch.cwd, OPENCODE_CONFIG: configPath, CLAUDE_VM_GATE_SOCKET: gateSocket,
      OPENCODE_DISABLE_AUTOUPDATE: '1', OPENCODE_DISABLE_MODELS_FETCH: '1', OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
    };
    return { args, env };
  }

  /** Events are stored and shown: no launch env value (API key, a base URL with credentials) may be in one. */
  private emit<T extends EventType>(type: T, data: EventPayloads[T]): void {
    this.events.emit(type, scrubSecrets(data, secretValues(this.launch.env)));
  }
}

/** The process groups of every descendant of pid (opencode runs each bash command in a new session). */
function descendantGroups(pid: number): number[] {
  const procs: Array<{ pid: number; ppid: number; pgrp: number }> = [];
  let entries: string[] = [];
  try { entries = readdirSync('/proc'); } catch { return []; } // no procfs: only the group signal
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number) as [number, number, number];
      procs.push({ pid: Number(name), ppid: ppid ?? 0, pgrp: pgrp ?? 0 });
    } catch { /* gone meanwhile */ }
  }
  const tree = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (!tree.has(p.pid) && tree.has(p.ppid)) (tree.add(p.pid), (grew = true));
  }
  const groups = new Set(procs.filter((p) => p.pid !== pid && tree.has(p.pid) && p.pgrp > 1).map((p) => p.pgrp));
  groups.delete(process.pid); // never our own group
  return [...groups];
}

const killGroup = (pgid: number, signal: NodeJS.Signals) => { try { process.kill(-pgid, signal); } catch { /* already gone */ } };
const cap = (s: string) => (s.length > MAX_OUTPUT ? `${s.slice(0, MAX_OUTPUT)}\n… (${s.length - MAX_OUTPUT} more characters)` : s);
const lastLine = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';

export const opencodeAgent: AgentDefinition = {
  name: 'opencode',
  bin: 'opencode',
  create: (launch, events) => new OpencodeDriver(launch, events),
};
