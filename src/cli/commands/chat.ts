/** @module Talking to agents: new-chat, chat, send, interrupt, cancel, logs, conversations. */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { AGENTS, type AnyEvent, type ConversationInfo } from '../../protocol/events.js';
import { UserError } from '../../protocol/errors.js';
import type { Context } from '../context.js';
import { ago, printJson, table } from '../render.js';
import { renderEvent } from '../render-events.js';
import { runTerminal } from '../terminal.js';

export function chatCommands(program: Command, ctx: Context): void {
  program
    .command('new-chat <workspace>')
    .description('Start a conversation with a coding agent in a workspace; prints its id')
    .option('--agent <agent>', `one of ${AGENTS.join(', ')}`, 'claude')
    .option('--model <model>', 'model for this conversation')
    .option('-m, --message <text>', 'first message: the agent starts working at once')
    .option('--json', 'print the conversation as JSON')
    .action(async (workspace: string, o: { agent: string; model?: string; message?: string; json?: boolean }) => {
      const c = await ctx.client().conversations.create({ workspace, agent: o.agent, model: o.model, message: o.message });
      if (o.json) return printJson(c);
      process.stdout.write(`${c.id}\n`);
      process.stderr.write(`Follow it with \`claude-vm logs ${c.id} --follow\` or \`claude-vm chat -c ${c.id}\`.\n`);
    });

  program
    .command('send <conversation> <message>')
    .description('Queue a message; the agent gets it when its current turn ends')
    .option('--json', 'print the queued message as JSON')
    .action(async (conv: string, text: string, o: { json?: boolean }) => {
      const q = await ctx.client().conversations.send(conv, text);
      if (o.json) return printJson(q);
      process.stdout.write(`Queued ${q.queueId}.\n`);
    });

  program
    .command('cancel <conversation> <queue-id>')
    .description('Take a queued message back before the agent gets it')
    .action(async (conv: string, queueId: string) => {
      await ctx.client().conversations.cancel(conv, queueId);
      process.stdout.write(`Cancelled ${queueId}.\n`);
    });

  program
    .command('interrupt <conversation>')
    .description('Stop the current turn; the conversation stays open')
    .action(async (conv: string) => {
      const done = await ctx.client().conversations.interrupt(conv);
      process.stdout.write(done ? 'Interrupted.\n' : 'Nothing to interrupt: the agent is idle.\n');
    });

  program
    .command('logs <conversation>')
    .description("A conversation's events: messages, tool calls and results, costs")
    .option('--from <seq>', 'start at this sequence number', (v) => parseSeq(v), 1)
    .option('-f, --follow', 'keep printing new events')
    .option('--json', 'events as JSON lines')
    .action(async (conv: string, o: { from: number; follow?: boolean; json?: boolean }) => {
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      await ctx.client().conversations.events(conv, {
        from: o.from,
        follow: o.follow,
        signal: ac.signal,
        onEvent: (e) => {
          if (o.json) process.stdout.write(JSON.stringify(e) + '\n');
          else {
            const line = renderEvent(e);
            if (line) process.stdout.write(line + '\n');
          }
        },
      });
    });

  program
    .command('conversations')
    .alias('convs')
    .description('Conversations in running workspaces, with state, cost and last message')
    .option('-w, --workspace <id>', 'only this workspace')
    .option('--json', 'print JSON')
    .action(async (o: { workspace?: string; json?: boolean }) => {
      const list = await ctx.client().conversations.list(o.workspace);
      if (o.json) return printJson(list);
      if (!list.length) return void process.stdout.write('No conversations. Start one with `claude-vm new-chat <workspace> -m "…"`.\n');
      process.stdout.write(table(['ID', 'WORKSPACE', 'AGENT', 'STATE', 'QUEUED', 'COST', 'UPDATED', 'LAST MESSAGE'], list.map((c) => [
        c.id, c.workspaceId, c.agent, c.state, String(c.queue.length), `$${c.costUsd.toFixed(4)}`, ago(c.updatedAt), oneLine(c.lastMessage ?? ''),
      ])));
    });

  program
    .command('chat')
    .description('Interactive chat: type to queue a message, Ctrl-C interrupts the turn, Ctrl-D detaches (the agent keeps going)')
    .option('-w, --workspace <id>', 'pick a conversation in this workspace (the newest), or start one')
    .option('-c, --conversation <id>', 'this conversation')
    .option('--history <n>', 'show this many past events first', (v) => parseSeq(v), 30)
    .option('--tui', "open the agent's own terminal UI on this session, in tmux (only between turns)")
    .action(async (o: { workspace?: string; conversation?: string; history: number; tui?: boolean }) => {
      const client = ctx.client();
      const conv = await pickConversation(o, client.conversations.list, client.conversations.create, client.conversations.get);
      if (o.tui) return runTerminal((io) => client.conversations.tui(conv.id, io));
      process.stderr.write(`Chatting in ${conv.id} (${conv.agent}, workspace ${conv.workspaceId}). Ctrl-C interrupts, Ctrl-D detaches.\n`);
      const ac = new AbortController();
      const following = client.conversations.events(conv.id, {
        from: Math.max(1, conv.lastSeq - o.history + 1),
        follow: true,
        signal: ac.signal,
        onEvent: (e: AnyEvent) => {
          const line = renderEvent(e);
          if (line) process.stdout.write(`\r\x1b[2K${line}\n`);
        },
      });
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: !!process.stdin.isTTY });
      // Sends go out in the order typed, and all of them are delivered before a detach returns.
      let sending: Promise<unknown> = Promise.resolve();
      rl.on('line', (text) => {
        if (!text.trim()) return;
        sending = sending.then(() => client.conversations.send(conv.id, text)).catch((e: Error) => process.stderr.write(`error: ${e.message}\n`));
      });
      rl.on('SIGINT', () => {
        client.conversations.interrupt(conv.id).then((did) => process.stderr.write(did ? 'interrupting…\n' : '(idle: nothing to interrupt; Ctrl-D detaches)\n'));
      });
      await new Promise<void>((resolve) => rl.on('close', resolve));
      await sending;
      ac.abort();
      await following.catch(() => undefined);
      process.stderr.write(`Detached; the agent keeps working. Come back with \`claude-vm chat -c ${conv.id}\`.\n`);
    });
}

async function pickConversation(
  o: { workspace?: string; conversation?: string },
  list: (ws?: string) => Promise<ConversationInfo[]>,
  create: (req: { workspace: string }) => Promise<ConversationInfo>,
  get: (ref: string) => Promise<ConversationInfo>,
): Promise<ConversationInfo> {
  if (o.conversation) return get(o.conversation);
  if (!o.workspace) throw new UserError('invalid_argument', 'Say which conversation or workspace.', 'Use `chat -c <conversation>` or `chat -w <workspace>`.');
  const existing = await list(o.workspace);
  return existing[existing.length - 1] ?? create({ workspace: o.workspace });
}

function parseSeq(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UserError('invalid_argument', `"${v}" is not a whole number.`);
  return n;
}

function oneLine(s: string): string {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > 60 ? `${l.slice(0, 57)}…` : l;
}
