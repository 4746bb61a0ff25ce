/**
 * @module Conversations as a user sees them: found through the state store (only the user's own), driven
 * through each workspace's daemon, and read from the control plane's event store, so a stopped workspace's
 * conversations can still be read.
 */
import type { AnyEvent, ConversationInfo, QueuedMessage } from '../protocol/events.js';
import { UserError } from '../protocol/errors.js';
import type { ProgressFn } from '../protocol/types.js';
import type { StateStore } from '../store/state.js';
import { parseAgent, type AgentService } from './agents.js';
import { daemonRoot } from './daemon-link.js';
import type { ExecRequest, WorkspaceService, WorkspaceTarget } from './workspaces.js';
import type { ExecHandle } from '../providers/provider.js';
import type { Principal } from './principal.js';

export interface NewChatRequest {
  workspace: string;
  agent?: string;
  model?: string;
  message?: string;
}

/** How the control plane reaches a workspace's daemon (its tunnel, or the provider's exec as a fallback). */
export interface DaemonChannel {
  /** Installs or upgrades the daemon if needed, starts it, and waits until it can be called. */
  ensure(t: WorkspaceTarget, progress?: ProgressFn): Promise<void>;
  call(t: WorkspaceTarget, method: string, params: Record<string, unknown>): Promise<unknown>;
}

/** Events of one conversation from `from` on; with follow, live until the signal aborts. */
export interface EventFeed {
  read(workspaceId: string, conversationId: string, opts: { from: number; follow: boolean; onEvent: (e: AnyEvent) => void; signal?: AbortSignal }): Promise<void>;
}

export class ConversationService {
  constructor(
    private readonly store: StateStore,
    private readonly workspaces: WorkspaceService,
    private readonly agents: AgentService,
    private readonly daemons: DaemonChannel,
    private readonly feed: EventFeed,
    private readonly principal: Principal,
  ) {}

  async create(req: NewChatRequest): Promise<ConversationInfo> {
    const agent = parseAgent(req.agent ?? 'claude');
    const t = await this.workspaces.runningTarget(req.workspace);
    await this.daemons.ensure(t);
    const settings = await this.agents.launchSettings(agent, t.workspaceId);
    // The user's approval rules travel with every message, from here only: the daemon keeps no copy the agent could edit.
    const rules = (await this.store.gateRules(t.workspaceId)).text;
    const info = (await this.daemons.call(t, 'conversation.create', { agent, model: req.model ?? settings.model, env: settings.env, rules, message: req.message })) as ConversationInfo;
    await this.store.insertConversation({ id: info.id, workspaceId: t.workspaceId, agent, info });
    return info;
  }

  /** Every conversation of the user's workspaces (or of one), as last reported by its daemon. */
  async list(workspace?: string): Promise<ConversationInfo[]> {
    const workspaceId = workspace ? (await this.workspaces.get(workspace)).id : undefined;
    const rows = await this.store.listConversations({ ownerId: this.principal.userId, workspaceId });
    return rows.filter((r) => r.info).map((r) => r.info!);
  }

  async get(ref: string): Promise<ConversationInfo> {
    const c = await this.locate(ref);
    const t = await this.workspaces.runningTarget(c.workspaceId).catch(() => undefined);
    if (!t) {
      if (c.info) return c.info;
      throw new UserError('wrong_state', `The workspace of conversation ${c.id} is not running.`, `Start it with \`claude-vm workspace up ${c.workspaceId}\`.`);
    }
    return (await this.daemons.call(t, 'conversation.get', { id: c.id })) as ConversationInfo;
  }

  async send(ref: string, text: string): Promise<QueuedMessage> {
    if (!text.trim()) throw new UserError('invalid_argument', 'The message is empty.');
    const c = await this.locate(ref);
    const t = await this.workspaces.runningTarget(c.workspaceId);
    const settings = await this.agents.launchSettings(c.agent, t.workspaceId);
    const rules = (await this.store.gateRules(t.workspaceId)).text;
    return (await this.daemons.call(t, 'conversation.send', { id: c.id, text, env: settings.env, rules })) as QueuedMessage;
  }

  async cancel(ref: string, queueId: string): Promise<void> {
    const c = await this.locate(ref);
    await this.daemons.call(await this.workspaces.runningTarget(c.workspaceId), 'conversation.cancel', { id: c.id, queueId });
  }

  async interrupt(ref: string): Promise<boolean> {
    const c = await this.locate(ref);
    const r = (await this.daemons.call(await this.workspaces.runningTarget(c.workspaceId), 'conversation.interrupt', { id: c.id })) as { interrupted: boolean };
    return r.interrupted;
  }

  /** Events from `from` on, served by the control plane's store (so also while the workspace is stopped). */
  async events(ref: string, opts: { from?: number; follow?: boolean; onEvent: (e: AnyEvent) => void; signal?: AbortSignal }): Promise<void> {
    const c = await this.locate(ref);
    await this.feed.read(c.workspaceId, c.id, { from: Math.max(1, opts.from ?? 1), follow: !!opts.follow, onEvent: opts.onEvent, signal: opts.signal });
  }

  /**
   * The agent's own TUI on a conversation, in a tmux session (`tui-<id>`) that a later call reattaches to.
   * The daemon refuses while a headless turn runs, and holds headless turns back while the TUI is open.
   */
  async tui(ref: string, io: Omit<ExecRequest, 'argv'>): Promise<ExecHandle> {
    const c = await this.locate(ref);
    const t = await this.workspaces.runningTarget(c.workspaceId);
    const info = (await this.daemons.call(t, 'conversation.get', { id: c.id })) as ConversationInfo;
    if (info.state === 'working' || info.state === 'waiting-approval') {
      throw new UserError('wrong_state', `Conversation ${c.id} is in the middle of a turn.`, `Wait for it, or \`claude-vm interrupt ${c.id}\`, then open the TUI.`);
    }
    const root = daemonRoot(t.provider.workspaceRoot(t.refs));
    const inner = `CLAUDE_VM_ROOT='${root}' node '${root}/daemon/src/daemon/main.js' tui ${c.id}`;
    return t.provider.exec(t.refs, { ...io, cwd: t.projectDir, argv: ['tmux', 'new-session', '-A', '-D', '-s', `tui-${c.id}`, inner] });
  }

  /** A conversation of this user's, by id or unique prefix; another user's is "not found". */
  async locate(ref: string) {
    // The common case (a full id, as the web UI and followers send) is one indexed lookup, not a list.
    const direct = ref ? await this.store.getConversation(ref, this.principal.userId) : undefined;
    if (direct) return { ...direct, agent: parseAgent(direct.agent) };
    const all = await this.store.listConversations({ ownerId: this.principal.userId });
    const exact = all.find((c) => c.id === ref);
    const matches = exact ? [exact] : all.filter((c) => ref && (c.id.startsWith(ref) || c.id.startsWith(`c_${ref}`)));
    if (matches.length === 0) throw new UserError('not_found', `No conversation matches "${ref}".`, 'See `claude-vm conversations`.');
    if (matches.length > 1) throw new UserError('ambiguous', `"${ref}" matches ${matches.length} conversations.`, 'Type more of the id.');
    const c = matches[0]!;
    return { ...c, agent: parseAgent(c.agent) };
  }
}
