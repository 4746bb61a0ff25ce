/** @module Renders conversation events for people: one readable line or block per event, long output folded. */
import type { AnyEvent } from '../protocol/events.js';

const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

export function renderEvent(e: AnyEvent): string | null {
  switch (e.type) {
    case 'conversation.created':
      return dim(`── conversation with ${e.data.agent}${e.data.model ? ` (${e.data.model})` : ''}`);
    case 'message.queued':
      return dim(`queued ${e.data.queueId}: ${oneLine(e.data.text)}`);
    case 'message.cancelled':
      return dim(`cancelled ${e.data.queueId}`);
    case 'message.sent':
      return `${bold('you')}: ${e.data.text}`;
    case 'assistant.text':
      return `${bold('agent')}: ${e.data.text}`;
    case 'tool.called':
      return `  ▸ ${e.data.name} ${summarize(e.data.input)}`;
    case 'tool.result':
      return dim(fold(`    ${e.data.isError ? '✗' : '✓'} ${e.data.output}`));
    case 'approval.requested':
      return `  ? approval ${e.data.approvalId}: ${e.data.tool} ${summarize(e.data.input)}`;
    case 'approval.decided':
      return dim(`    ${e.data.decision} by ${e.data.by}`);
    case 'turn.completed':
      return dim(`── turn done${e.data.isError ? ' (with an error)' : ''}: ${e.data.inputTokens} in / ${e.data.outputTokens} out tokens${e.data.costUsd !== null ? `, $${e.data.costUsd.toFixed(4)}` : ''}`);
    case 'turn.interrupted':
      return dim(`── turn interrupted: ${e.data.reason}`);
    case 'error':
      return `error: ${e.data.message}`;
    case 'tui.attached':
      return dim('── someone opened the agent TUI on this session; messages wait until it closes');
    case 'tui.detached':
      return dim('── the agent TUI closed');
    case 'agent.started':
    case 'agent.exited':
    case 'session.started':
      return null;
  }
}

function summarize(input: unknown): string {
  if (input && typeof input === 'object') {
    const o = input as Record<string, unknown>;
    const key = ['command', 'cmd', 'file_path', 'path', 'pattern', 'url'].find((k) => typeof o[k] === 'string');
    if (key) return oneLine(String(o[key]));
  }
  return oneLine(JSON.stringify(input));
}

function oneLine(s: string): string {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > 160 ? `${l.slice(0, 157)}…` : l;
}

/** Long tool output is cut to its first lines; `logs --json` has it all. */
function fold(s: string, max = 12): string {
  const lines = s.split('\n');
  return lines.length <= max ? s : [...lines.slice(0, max), `    … ${lines.length - max} more lines (see logs --json)`].join('\n');
}
