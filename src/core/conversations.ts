/** @module Conversations as the client sees them: found through the state store, served by each workspace's daemon. */
import type { AnyEvent, ConversationInfo, QueuedMessage } from '../protocol/events.js';
import { UserError } from '../protocol/errors.js';
import type { StateStore } from '../store/state.js';
import { parseAgent, type AgentService } from './agents.js';
import { callDaemon, daemonRoot, ensureDaemon } from './daemon-link.js';
import type { ExecRequest, WorkspaceService } from './workspaces.js';
import type { ExecHandle } from '../providers/provider.js';

export interface NewChatRequest {
  workspace: string;
  agent?: string;
  model?: string;
  message?: string;
}

export class ConversationService {
  constructor(
    private readonly store: StateStore,
    private readonly workspaces: WorkspaceService,
    private readonly agents: AgentService,
  ) {}

  async create(req: NewChatRequest): Promise<ConversationInfo> {
    const agent = parseAgent(req.agent ?? 'claude');
    const t = await this.workspaces.runningTarget(req.workspace);
    await ensureDaemon(t);
    const settings = await this.agents.launchSettings(agent, t.workspaceId);
    const info = (await callDaemon(t, 'conversation.create', { agent, model: req.model ?? settings.model, env: settings.env, message: req.message })) as ConversationInfo;
    await this.store.insertConversation({ id: info.id, workspaceId: t.workspaceId, agent });
    return info;
  }

  /** Conversations of running workspaces (a stopped workspace's daemon cannot answer). */
  async list(workspace?: string): Promise<ConversationInfo[]> {
    const ids = workspace ? [(await this.workspaces.get(workspace)).id] : [...new Set((await this.store.listConversations()).map((c) => c.workspaceId))];
    const out: ConversationInfo[] = [];
    for (const id of ids) {
      const t = await this.workspaces.runningTarget(id).catch((e) => {
        if (workspace) throw e;
        return undefined;
      });
      if (!t) continue;
      out.push(...((await this.call(t, 'conversation.list', {})) as ConversationInfo[]));
    }
    return out;
  }

  async get(ref: string): Promise<ConversationInfo> {
    const { t, id } = await this.locate(ref);
    return (await this.call(t, 'conversation.get', { id })) as ConversationInfo;
  }

  async send(ref: string, text: string): Promise<QueuedMessage> {
    if (!text.trim()) throw new UserError('invalid_argument', 'The message is empty.');
    const { t, id, agent } = await this.locate(ref);
    const settings = await this.agents.launchSettings(agent, t.workspaceId);
    return (await this.call(t, 'conversation.send', { id, text, env: settings.env })) as QueuedMessage;
  }

  async cancel(ref: string, queueId: string): Promise<void> {
    const { t, id } = await this.locate(ref);
    await this.call(t, 'conversation.cancel', { id, queueId });
  }

  async interrupt(ref: string): Promise<boolean> {
    const { t, id } = await this.locate(ref);
    return ((await this.call(t, 'conversation.interrupt', { id })) as { interrupted: boolean }).interrupted;
  }

  /** Events from `from` on; with follow, keeps delivering until the signal aborts. */
  async events(ref: string, opts: { from?: number; follow?: boolean; onEvent: (e: AnyEvent) => void; signal?: AbortSignal }): Promise<void> {
    const { t, id } = await this.locate(ref);
    await this.call(t, 'events.read', { id, from: opts.from ?? 1, follow: !!opts.follow }, { onEvent: (e) => opts.onEvent(e as AnyEvent), signal: opts.signal });
  }

  /**
   * The agent's own TUI on a conversation, in a tmux session (`tui-<id>`) that a later call reattaches to.
   * The daemon refuses while a headless turn runs, and holds headless turns back while the TUI is open.
   */
  async tui(ref: string, io: Omit<ExecRequest, 'argv'>): Promise<ExecHandle> {
    const { t, id } = await this.locate(ref);
    const info = (await this.call(t, 'conversation.get', { id })) as ConversationInfo;
    if (info.state === 'working' || info.state === 'waiting-approval') {
      throw new UserError('wrong_state', `Conversation ${id} is in the middle of a turn.`, `Wait for it, or \`claude-vm interrupt ${id}\`, then open the TUI.`);
    }
    const root = daemonRoot(t.provider.workspaceRoot(t.refs));
    const inner = `CLAUDE_VM_ROOT='${root}' node '${root}/daemon/src/daemon/main.js' tui ${id}`;
    return t.provider.exec(t.refs, { ...io, cwd: t.projectDir, argv: ['tmux', 'new-session', '-A', '-D', '-s', `tui-${id}`, inner] });
  }

  /** The workspace and full id of a conversation, by id or unique prefix. */
  private async locate(ref: string) {
    const all = await this.store.listConversations();
    const exact = all.find((c) => c.id === ref);
    const matches = exact ? [exact] : all.filter((c) => c.id.startsWith(ref) || c.id.startsWith(`c_${ref}`));
    if (matches.length === 0) throw new UserError('not_found', `No conversation matches "${ref}".`, 'See `claude-vm conversations`.');
    if (matches.length > 1) throw new UserError('ambiguous', `"${ref}" matches ${matches.length} conversations.`, 'Type more of the id.');
    const c = matches[0]!;
    return { t: await this.workspaces.runningTarget(c.workspaceId), id: c.id, agent: parseAgent(c.agent) };
  }

  /** Calls the daemon, starting it first if it is not running (e.g. after a container restart in a foreign image). */
  private async call(t: Awaited<ReturnType<WorkspaceService['runningTarget']>>, method: string, params: Record<string, unknown>, opts?: Parameters<typeof callDaemon>[3]) {
    try {
      return await callDaemon(t, method, params, opts);
    } catch (e) {
      if (!(e instanceof UserError) || e.code !== 'provider_unavailable') throw e;
      await ensureDaemon(t);
      return callDaemon(t, method, params, opts);
    }
  }
}
