/**
 * @module The one event model. The workspace daemon appends these to each conversation's log (with a
 * per-conversation sequence number) before anyone sees them; the CLI, and later the control plane and web UI,
 * read the same shapes. Agent-specific output is normalised into these types by the daemon's drivers.
 */

export const AGENTS = ['claude', 'codex', 'gemini', 'qwen', 'opencode'] as const;
export type AgentName = (typeof AGENTS)[number];

/** `tui`: a person is in the agent's own terminal UI on this session; headless turns wait until they leave. */
export type ConversationState = 'idle' | 'working' | 'waiting-approval' | 'failed' | 'tui';

export interface EventPayloads {
  'conversation.created': { agent: AgentName; model: string | null };
  /** A user message accepted into the daemon's queue; delivered when the agent can take it. */
  'message.queued': { queueId: string; text: string };
  'message.cancelled': { queueId: string };
  /** The queued message went to the agent: a turn starts. */
  'message.sent': { queueId: string; text: string };
  'agent.started': { pid: number; resumed: boolean };
  'session.started': { sessionId: string; model: string | null };
  'assistant.text': { text: string };
  'tool.called': { toolUseId: string; name: string; input: unknown };
  'tool.result': { toolUseId: string; output: string; isError: boolean };
  /** `reason`: the rule that asks; `expiresAt`: when an unanswered request is refused. */
  'approval.requested': { approvalId: string; tool: string; input: unknown; reason?: string; expiresAt?: string };
  'approval.decided': { approvalId: string; decision: 'allow' | 'deny'; by: string };
  'turn.completed': { result: string; isError: boolean; costUsd: number | null; inputTokens: number; outputTokens: number; durationMs: number | null };
  'turn.interrupted': { reason: string };
  'agent.exited': { code: number | null; signal: string | null };
  'tui.attached': Record<string, never>;
  'tui.detached': Record<string, never>;
  error: { message: string };
}

export type EventType = keyof EventPayloads;

export interface EventEnvelope<T extends EventType = EventType> {
  /** 1, 2, 3… per conversation, with no gaps: a reader asking `from: n` gets exactly the events it has not seen. */
  seq: number;
  time: string;
  conversationId: string;
  type: T;
  data: EventPayloads[T];
}

export type AnyEvent = { [K in EventType]: EventEnvelope<K> }[EventType];

export interface QueuedMessage {
  queueId: string;
  text: string;
  queuedAt: string;
}

export interface ConversationInfo {
  id: string;
  workspaceId: string;
  agent: AgentName;
  model: string | null;
  state: ConversationState;
  sessionId: string | null;
  /** Events so far; the next event will have seq = lastSeq + 1. */
  lastSeq: number;
  queue: QueuedMessage[];
  costUsd: number;
  lastMessage: string | null;
  createdAt: string;
  updatedAt: string;
}
