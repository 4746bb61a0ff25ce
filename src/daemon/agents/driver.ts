/**
 * @module How the daemon drives one coding agent. A driver turns the agent's structured output (stream-json,
 * JSONL, ACP) into the shared event model; the conversation owns the queue and hands the driver one message
 * at a time, so a driver never has to cope with a message arriving mid-turn.
 */
import type { AgentName, EventPayloads, EventType } from '../../protocol/events.js';

export interface AgentLaunch {
  /** The project directory: the agent works here. */
  cwd: string;
  /** Base URL, model and secrets already mapped to this agent's own variables. Never logged, never in events. */
  env: Record<string, string>;
  model: string | null;
  /** The agent's own session id from an earlier run, to resume with its history. */
  sessionId: string | null;
  /** A private directory for this conversation's agent files (configs, logs). */
  stateDir: string;
}

export interface DriverEvents {
  emit<T extends EventType>(type: T, data: EventPayloads[T]): void;
  /** The agent told us its session id (first run) so later runs can resume it. */
  session(sessionId: string): void;
  /** The current turn is over (completed, failed or interrupted): the conversation may send the next message. */
  turnEnded(): void;
  /** The agent process ended; a long-lived driver is restarted (resuming its session) on the next message. */
  exited(code: number | null, signal: string | null): void;
  /**
   * The approval gate: may the agent run this tool call? Blocked calls are refused at once, risky ones wait for the
   * user's decision (or a timeout, which refuses). `reason` is told to the agent when refused.
   */
  gate(tool: string, input: unknown): Promise<{ allow: true } | { allow: false; reason: string }>;
}

export interface AgentDriver {
  /** Delivers one user message, starting the agent process if needed. */
  send(text: string): void;
  /** Ends the current turn early; the conversation stays usable. */
  interrupt(): Promise<void>;
  /** Stops the agent process (daemon shutdown, conversation closed). */
  stop(): Promise<void>;
}

export interface AgentDefinition {
  name: AgentName;
  /** The binary that must be on PATH in the workspace. */
  bin: string;
  create(launch: AgentLaunch, events: DriverEvents): AgentDriver;
}
