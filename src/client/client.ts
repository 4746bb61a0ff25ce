/**
 * @module The only surface the CLI (and later the web UI) talks to. Today it is served in-process; the control
 * plane will serve the same methods over HTTP, and the CLI will not notice the move.
 */
import type { ProviderInfo, ProgressFn, UpRequest, WorkspaceInfo, WorkspaceStatus } from '../protocol/types.js';
import type { ExecHandle, ExecOptions, LogOptions, ProviderOptionSpec } from '../providers/provider.js';
import type { AnyEvent, ConversationInfo, QueuedMessage } from '../protocol/events.js';
import type { AgentSettings, SetAgentRequest } from '../core/agents.js';
import type { NewChatRequest } from '../core/conversations.js';
import type { InstallAgentRequest } from '../core/agent-install.js';

export interface ProviderTypeInfo {
  type: string;
  description: string;
  isolates: boolean;
  options: ProviderOptionSpec[];
}

export interface UpResponse {
  workspace: WorkspaceInfo;
  action: 'created' | 'started' | 'already-running';
  notices: string[];
}

/** Where a command's terminal or streams go; the same shape the providers take. */
export type StreamIo = Omit<ExecOptions, 'argv' | 'cwd' | 'asRoot'>;

export interface ClaudeVmClient {
  providers: {
    types(): ProviderTypeInfo[];
    list(): Promise<ProviderInfo[]>;
    add(req: { name: string; type?: string; options?: Record<string, string> }): Promise<ProviderInfo>;
    setOptions(name: string, options: Record<string, string>): Promise<ProviderInfo>;
    delete(name: string): Promise<void>;
  };
  workspaces: {
    up(req: UpRequest, progress?: ProgressFn): Promise<UpResponse>;
    list(filter?: { status?: WorkspaceStatus }): Promise<WorkspaceInfo[]>;
    get(ref: string): Promise<WorkspaceInfo>;
    down(ref: string, opts?: { force?: boolean }): Promise<WorkspaceInfo>;
    delete(ref: string, opts?: { purge?: boolean }): Promise<{ id: string; purged: boolean }>;
    exec(ref: string, req: StreamIo & { argv: string[] }): Promise<ExecHandle>;
    shell(ref: string, req: StreamIo): Promise<ExecHandle>;
    logs(ref: string, opts: LogOptions): Promise<void>;
  };
  agents: {
    set(req: SetAgentRequest): Promise<AgentSettings>;
    list(): Promise<AgentSettings[]>;
    install(req: InstallAgentRequest, progress?: ProgressFn): Promise<{ agent: string; version: string }>;
  };
  conversations: {
    create(req: NewChatRequest): Promise<ConversationInfo>;
    list(workspace?: string): Promise<ConversationInfo[]>;
    get(ref: string): Promise<ConversationInfo>;
    send(ref: string, text: string): Promise<QueuedMessage>;
    cancel(ref: string, queueId: string): Promise<void>;
    interrupt(ref: string): Promise<boolean>;
    events(ref: string, opts: { from?: number; follow?: boolean; onEvent: (e: AnyEvent) => void; signal?: AbortSignal }): Promise<void>;
    tui(ref: string, io: StreamIo): Promise<ExecHandle>;
  };
  close(): void;
}
