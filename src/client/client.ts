/**
 * @module The only surface the CLI (and the web UI) talks to: the control plane's API. `http.ts` implements it
 * over HTTP, WebSockets and SSE, for a local server and a remote one alike.
 */
import type { ProviderInfo, ProgressFn, SnapshotInfo, UpRequest, WorkspaceInfo, WorkspaceStatus } from '../protocol/types.js';
import type { ExecHandle, ExecOptions, LogOptions, ProviderOptionSpec, SizeSpec } from '../providers/provider.js';
import type { AnyEvent, ConversationInfo, QueuedMessage } from '../protocol/events.js';
import type { AgentSettings, SetAgentRequest } from '../core/agents.js';
import type { NewChatRequest } from '../core/conversations.js';
import type { WorkspaceRules } from '../core/gate-rules.js';
import type { Duplex, Readable, Writable } from 'node:stream';

export interface ProviderTypeInfo {
  type: string;
  description: string;
  isolates: boolean;
  options: ProviderOptionSpec[];
  sizes: Record<string, SizeSpec>;
  defaultSize: string;
}

export interface UpResponse {
  workspace: WorkspaceInfo;
  action: 'created' | 'started' | 'already-running';
  notices: string[];
}

/** Where a command's terminal or streams go; the same shape the providers take. */
export type StreamIo = Omit<ExecOptions, 'argv' | 'cwd' | 'asRoot'>;

export interface InstallRequest {
  workspace: string;
  agent: string;
  /** Path of a PEM bundle on the client's machine; its contents are sent. */
  caBundle?: string;
}

export interface UserInfo {
  id: string;
  name: string;
  admin: boolean;
  createdAt: string;
}

export interface TokenInfo {
  id: string;
  name: string;
  scope: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

/** The audit log's entries are the store's, as they are. */
export type { AuditEntry } from '../store/auth.js';
import type { AuditEntry } from '../store/auth.js';

export interface SshKeyInfo {
  id: string;
  name: string;
  publicKey: string;
  fingerprint: string;
  createdAt: string;
}

export interface SshHostInfo {
  workspaceId: string;
  name: string | null;
  host: string;
  user: string;
  projectDir: string;
  hostPublicKey: string;
  status: string;
}

export interface ApprovalInfo {
  approvalId: string;
  tool: string;
  input: unknown;
  conversationId: string;
  workspaceId: string;
  requestedAt: string;
  /** The rule that asks. */
  reason?: string;
  /** When it is refused if nobody answers. */
  expiresAt?: string;
}

export interface ClaudeVmClient {
  /** Where this client is connected (for messages). */
  readonly url: string;
  me(): Promise<{ user: { id: string; name: string; admin: boolean }; scope: string }>;
  /** A one-time link that logs this user into the web UI. */
  loginLink(): Promise<{ url: string; expiresAt: string }>;
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
    /** Snapshots first (unless forced), then stops. */
    down(ref: string, opts?: { force?: boolean }, progress?: ProgressFn): Promise<WorkspaceInfo>;
    delete(ref: string, opts?: { purge?: boolean }, progress?: ProgressFn): Promise<{ id: string; purged: boolean }>;
    exec(ref: string, req: StreamIo & { argv: string[] }): Promise<ExecHandle>;
    shell(ref: string, req: StreamIo): Promise<ExecHandle>;
    logs(ref: string, opts: LogOptions): Promise<void>;
    rules(ref: string): Promise<WorkspaceRules>;
    /** null: back to the built-in rules only. */
    setRules(ref: string, text: string | null): Promise<WorkspaceRules>;
  };
  agents: {
    set(req: SetAgentRequest & { workspace?: string }): Promise<AgentSettings>;
    list(): Promise<AgentSettings[]>;
    install(req: InstallRequest, progress?: ProgressFn): Promise<{ agent: string; version: string }>;
  };
  conversations: {
    create(req: NewChatRequest): Promise<ConversationInfo>;
    list(workspace?: string): Promise<ConversationInfo[]>;
    get(ref: string): Promise<ConversationInfo>;
    send(ref: string, text: string): Promise<QueuedMessage>;
    cancel(ref: string, queueId: string): Promise<void>;
    interrupt(ref: string): Promise<boolean>;
    /** With follow, reconnects by itself (a restarted server, a dropped network) and resumes without gaps. */
    events(ref: string, opts: { from?: number; follow?: boolean; onEvent: (e: AnyEvent) => void; signal?: AbortSignal }): Promise<void>;
    tui(ref: string, io: StreamIo): Promise<ExecHandle>;
  };
  snapshots: {
    take(ref: string, opts?: { includeCaches?: boolean }, progress?: ProgressFn): Promise<SnapshotInfo>;
    list(ref: string): Promise<SnapshotInfo[]>;
    /** The latest snapshot as a tar (a running workspace is snapshotted first). */
    export(ref: string, out: Writable): Promise<void>;
    /** A new workspace from an exported tar. */
    import(input: Readable, req: { provider?: string; name?: string; size?: string }, progress?: ProgressFn): Promise<UpResponse>;
  };
  approvals: {
    list(): Promise<ApprovalInfo[]>;
    /** `remember`: also allow this exact command from now on (the control plane adds a rule ahead of the workspace's). */
    decide(id: string, decision: 'allow' | 'deny', remember?: boolean): Promise<{ rulesAdded?: string[] }>;
  };
  users: {
    list(): Promise<UserInfo[]>;
    add(name: string, admin: boolean): Promise<{ user: UserInfo; secret: string }>;
    delete(ref: string): Promise<void>;
  };
  tokens: {
    list(): Promise<TokenInfo[]>;
    create(req: { name: string; expiresInDays?: number; readOnly?: boolean }): Promise<{ token: TokenInfo; secret: string }>;
    revoke(id: string): Promise<void>;
  };
  audit(limit?: number): Promise<AuditEntry[]>;
  ssh: {
    keys(): Promise<SshKeyInfo[]>;
    addKey(publicKey: string, name?: string): Promise<SshKeyInfo>;
    removeKey(idOrFingerprint: string): Promise<void>;
    host(workspace: string): Promise<SshHostInfo>;
    /** The workspace's SSH server, as a byte stream through its tunnel. */
    connect(workspace: string): Promise<Duplex>;
    /** A TCP port on the workspace's loopback, as a byte stream through its tunnel. */
    port(workspace: string, port: number): Promise<Duplex>;
  };
  close(): void;
}
