/**
 * @module The workspace daemon: loads the conversations kept on the volume, serves them on a unix socket
 * (newline-delimited JSON requests; responses and followed events as JSON lines) and to the control plane through
 * the tunnel it dials (src/daemon/tunnel.ts), and keeps their agents going with nobody attached.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AGENTS, type AgentName } from '../protocol/events.js';
import { Conversation } from './conversation.js';
import { WorkspaceFiles } from './files.js';
import { WorkspaceGit } from './git.js';
import { AGENT_DEFINITIONS } from './agents/index.js';
import { TunnelClient, type RpcReply } from './tunnel.js';
import { openTarget } from './streams.js';
import { GateRulesError, parseGateRules, type GateRule } from '../protocol/gate-rules.js';
import { allowRulesFor } from './gate.js';

export interface DaemonOptions {
  /** $root holds the socket and conversations/ (on the workspace volume). */
  root: string;
  projectDir: string;
  workspaceId: string;
  /** Outside the volume: where per-conversation agent secrets are cached across daemon restarts. */
  secretDir: string;
  version: string;
}

export interface Request {
  id: number;
  method: string;
  params?: Record<string, unknown>;
}

class RpcError extends Error {}

/** Error codes a caller can act on, passed through to the control plane (others become invalid_argument). */
const ERROR_CODES = new Set(['not_found', 'forbidden', 'wrong_state', 'invalid_argument']);

/** Methods that hold something for as long as the local connection lives, or stream on it. */
const LOCAL_ONLY = new Set(['conversation.tui', 'events.read']);
/**
 * Decisions that belong to the user, through the control plane: the agent (same uid, same socket) can neither
 * approve itself nor change its own approval rules.
 */
const REMOTE_ONLY = new Set(['approval.decide', 'rules.set']);

export class Daemon {
  private readonly conversations = new Map<string, Conversation>();
  private server: Server | undefined;
  private tunnel: TunnelClient | undefined;

  /**
   * The user's approval rules. Kept in memory only: they come from the control plane with every call that can start
   * an agent (and `rules.set`), because any file the daemon could read, the agent could write.
   */
  private rules: GateRule[] = [];

  private readonly files: WorkspaceFiles;
  private readonly git: WorkspaceGit;

  constructor(private readonly opts: DaemonOptions) {
    // The persistent root is the parent of the daemon's own directory (/workspace for /workspace/.claude-vm).
    this.files = new WorkspaceFiles(dirname(opts.root), opts.root);
    this.git = new WorkspaceGit(opts.projectDir, opts.root);
  }

  get socketPath(): string {
    return join(this.opts.root, 'daemon.sock');
  }

  async start(): Promise<void> {
    const dir = join(this.opts.root, 'conversations');
    mkdirSync(dir, { recursive: true });
    mkdirSync(this.opts.secretDir, { recursive: true, mode: 0o700 });
    for (const id of readdirSync(dir)) {
      if (!existsSync(join(dir, id, 'meta.json'))) continue;
      try {
        const c = Conversation.load(this.deps(id, agentOf(join(dir, id))));
        this.conversations.set(id, c);
      } catch (e) {
        process.stderr.write(`claude-vm-daemon: skipping conversation ${id}: ${(e as Error).message}\n`);
      }
    }
    // A socket file left by a killed daemon would make listen() fail.
    rmSync(this.socketPath, { force: true });
    this.server = createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => this.server!.once('error', reject).listen(this.socketPath, resolve));
    // Without tunnel.json the tunnel just waits for it: the unix socket alone is a working daemon.
    this.tunnel = new TunnelClient({
      root: this.opts.root,
      workspaceId: this.opts.workspaceId,
      version: this.opts.version,
      conversations: () => this.conversations.values(),
      call: (method, params) => this.callRemote(method, params),
      openStream: (target) => openTarget(target, this.opts.secretDir),
    });
    this.tunnel.start();
  }

  async stop(): Promise<void> {
    this.server?.close();
    await this.tunnel?.stop();
    await Promise.all([...this.conversations.values()].map((c) => c.stop()));
  }

  private serve(socket: Socket): void {
    let buffered = '';
    const unsubscribers: Array<() => void> = [];
    socket.on('data', (d) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        let req: Request;
        try {
          req = JSON.parse(line) as Request;
        } catch {
          socket.write(JSON.stringify({ id: null, error: { message: 'request is not JSON' } }) + '\n');
          continue;
        }
        const send = (msg: object) => socket.writable && socket.write(JSON.stringify({ id: req.id, ...msg }) + '\n');
        if (REMOTE_ONLY.has(req.method)) {
          send({ error: { message: `${req.method} is only accepted from the control plane.`, code: 'forbidden' } });
          continue;
        }
        // Rules ride along with remote calls only; on the local socket they would be the agent's own.
        if (req.params && 'rules' in req.params) delete req.params.rules;
        this.handle(req, send, unsubscribers).catch((e: Error) => send({ error: { message: e.message } }));
      }
    });
    socket.on('close', () => unsubscribers.forEach((u) => u()));
    socket.on('error', () => undefined);
  }

  /** An RPC from the control plane: the socket's handler, answered by its final line. */
  private callRemote(method: string, params: Record<string, unknown>): Promise<RpcReply> {
    if (LOCAL_ONLY.has(method)) {
      return Promise.resolve({ error: { message: `${method} is only served on the workspace's own socket.`, code: 'invalid_argument' } });
    }
    return new Promise((resolve) => {
      this.handle({ id: 0, method, params }, (m) => resolve(m as RpcReply), []).catch((e: Error & { code?: string }) =>
        resolve({ error: { message: e.message, ...(typeof e.code === 'string' && ERROR_CODES.has(e.code) ? { code: e.code } : {}) } }),
      );
    });
  }

  private async handle(req: Request, send: (m: object) => void, unsubscribers: Array<() => void>): Promise<void> {
    const p = req.params ?? {};
    switch (req.method) {
      case 'ping':
        return send({ result: { version: this.opts.version, pid: process.pid, workspaceId: this.opts.workspaceId } });
      case 'conversation.create': {
        const agent = (p.agent as string | undefined) ?? 'claude';
        if (!AGENTS.includes(agent as AgentName)) throw new RpcError(`Unknown agent "${agent}". Known: ${AGENTS.join(', ')}.`);
        if (!AGENT_DEFINITIONS[agent as AgentName]) throw new RpcError(`The ${agent} agent is not supported by this workspace daemon yet.`);
        this.takeRules(p.rules);
        const id = `c_${randomBytes(5).toString('hex')}`;
        const c = Conversation.create(this.deps(id, agent as AgentName), {
          id, workspaceId: this.opts.workspaceId, agent: agent as AgentName, model: (p.model as string | undefined) ?? null,
        });
        c.configure(p.env as Record<string, string> | undefined);
        this.conversations.set(id, c);
        this.tunnel?.added(c);
        if (typeof p.message === 'string' && p.message) c.enqueue(p.message);
        return send({ result: c.info() });
      }
      case 'conversation.list':
        return send({ result: [...this.conversations.values()].map((c) => c.info()).sort((a, b) => a.createdAt.localeCompare(b.createdAt)) });
      case 'conversation.get':
        return send({ result: this.get(p).info() });
      case 'conversation.send': {
        const c = this.get(p);
        if (typeof p.text !== 'string' || !p.text.trim()) throw new RpcError('The message is empty.');
        this.takeRules(p.rules);
        c.configure(p.env as Record<string, string> | undefined);
        return send({ result: c.enqueue(p.text) });
      }
      case 'conversation.cancel': {
        const ok = this.get(p).cancel(String(p.queueId));
        if (!ok) throw new RpcError(`No queued message ${String(p.queueId)} (it may already have been sent).`);
        return send({ result: { cancelled: p.queueId } });
      }
      case 'conversation.interrupt':
        return send({ result: { interrupted: await this.get(p).interrupt() } });
      case 'approval.decide': {
        const decision = p.decision === 'allow' ? 'allow' : 'deny';
        const by = String(p.by ?? 'someone');
        const decided = this.get(p).decide(String(p.approvalId ?? ''), decision, by);
        if (!decided) {
          throw Object.assign(new RpcError(`Approval request ${String(p.approvalId)} is not waiting any more (decided, timed out, or its agent stopped).`), { code: 'not_found' });
        }
        // "Always allow": the rules that would have let it through, for the control plane to keep (it owns the rules).
        const remember = decision === 'allow' && p.remember === true ? allowRulesFor(decided.command, by) : undefined;
        return send({ result: { approvalId: p.approvalId, decision, ...(remember ? { remember } : {}) } });
      }
      case 'rules.set':
        this.takeRules(p.rules ?? null);
        return send({ result: { rules: this.rules.length } });
      case 'conversation.tui': {
        // Held for as long as this connection lives: the TUI wrapper keeps it open until the TUI exits.
        const c = this.get(p);
        const grant = await c.holdForTui();
        unsubscribers.push(() => c.releaseTui());
        return send({ result: grant });
      }
      case 'events.read': {
        // Replay from `from`, then (with follow) stream live: subscribing before replaying could duplicate,
        // replaying before subscribing could lose; both happen synchronously here, so neither can.
        const c = this.get(p);
        let next = Number(p.from ?? 1);
        for (const e of c.log.read(next)) send({ event: e });
        next = c.log.lastSeq + 1;
        if (!p.follow) return send({ result: { lastSeq: c.log.lastSeq } });
        unsubscribers.push(c.log.subscribe((e) => e.seq >= next && send({ event: e })));
        return;
      }
      case 'git.base':
        return send({ result: await this.git.ensureBase() });
      case 'git.changes':
        return send({ result: await this.git.changes() });
      case 'git.commit':
        return send({ result: await this.git.commit(String(p.message ?? ''), p.push === true) });
      case 'fs.get':
        return send({ result: this.files.get(String(p.path ?? '.'), this.opts.projectDir) });
      case 'fs.put':
        return send({ result: this.files.put(String(p.path ?? ''), this.opts.projectDir, String(p.contentBase64 ?? ''), typeof p.mode === 'number' ? p.mode : undefined) });
      case 'fs.delete':
        return send({ result: this.files.delete(String(p.path ?? ''), this.opts.projectDir) });
      default:
        throw new RpcError(`Unknown method ${req.method}.`);
    }
  }

  /** A rules file from the control plane: text replaces the rules, null clears them, undefined leaves them. */
  private takeRules(text: unknown): void {
    if (text === undefined) return;
    try {
      this.rules = typeof text === 'string' ? parseGateRules(text) : [];
    } catch (e) {
      // The control plane checked them: a file it took that this daemon refuses is a version skew, said loudly.
      throw new RpcError(e instanceof GateRulesError ? e.message : String(e));
    }
  }

  private get(p: Record<string, unknown>): Conversation {
    const id = String(p.id ?? '');
    const c = this.conversations.get(id) ?? [...this.conversations.values()].find((x) => x.info().id.startsWith(id) && id.length >= 4);
    if (!c) throw new RpcError(`No conversation ${id} in this workspace.`);
    return c;
  }

  private deps(id: string, agent: AgentName) {
    const def = AGENT_DEFINITIONS[agent];
    if (!def) throw new Error(`agent ${agent} is not supported by this daemon`);
    return {
      dir: join(this.opts.root, 'conversations', id),
      projectDir: this.opts.projectDir,
      secretFile: join(this.opts.secretDir, `${id}.json`),
      agent: def,
      approvalTimeoutMs: Number(process.env.CLAUDE_VM_APPROVAL_TIMEOUT ?? 900) * 1000,
      rules: () => this.rules,
    };
  }
}

/** Just enough of meta.json to pick the driver before loading the conversation. */
function agentOf(dir: string): AgentName {
  return (JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { agent: AgentName }).agent;
}
