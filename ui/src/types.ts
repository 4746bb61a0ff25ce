/** Shapes the API answers with. The event model and workspace shapes come from the server's own protocol files. */
export type { AnyEvent, AgentName, ConversationInfo, ConversationState, EventPayloads, EventType, QueuedMessage } from '../../src/protocol/events.js';
export type { WorkspaceInfo, WorkspaceStatus, ProviderInfo } from '../../src/protocol/types.js';

export const AGENT_NAMES = ['claude', 'codex', 'gemini', 'qwen', 'opencode'] as const;

export interface Me {
  user: { id: string; name: string; admin: boolean };
  scope?: string;
  csrfToken?: string;
}

export interface Approval {
  approvalId: string;
  tool: string;
  input: unknown;
  conversationId: string;
  workspaceId: string;
  requestedAt: string;
  /** The rule that asks, and when an unanswered request is refused. */
  reason?: string;
  expiresAt?: string;
}

export interface AppNotification {
  kind: 'turn.completed' | 'turn.failed' | 'approval.requested';
  title: string;
  body: string;
  workspaceId: string;
  conversationId: string;
}

export interface ProviderType {
  type: string;
  description: string;
  isolates: boolean;
  sizes: Record<string, { cpus: number; memoryMb: number }>;
  defaultSize: string;
}

export interface FileEntry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  mtime: string;
}

export type FileListing = { path: string; type: 'dir'; entries: FileEntry[] } | { path: string; type: 'file'; size: number; contentBase64: string };

export interface Changes {
  base: string | null;
  files: { path: string; status: 'modified' | 'added' | 'deleted' | 'untracked' }[];
  diff: string;
}

export interface NotificationSettings {
  webhookUrl: string | null;
  vapidPublicKey: string;
  subscriptions: number;
}

export interface UpResult {
  workspace: import('../../src/protocol/types.js').WorkspaceInfo;
  action: 'created' | 'started' | 'already-running';
  notices: string[];
}
