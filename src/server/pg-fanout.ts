/**
 * @module Several control-plane processes on one PostgreSQL database: a viewer connected to one process must see
 * events that a workspace tunnel delivered to another. Each process NOTIFYs what it stored (coalesced per
 * conversation) and LISTENs for the others; the event store itself stays the only source of events.
 */
import pg from 'pg';
import type { EventHub } from './event-hub.js';

const CHANNEL = 'claude_vm_events';

export async function startPgFanout(url: string, hub: EventHub): Promise<{ close(): Promise<void> }> {
  const listen = new pg.Client({ connectionString: url });
  const notify = new pg.Client({ connectionString: url });
  await listen.connect();
  await notify.connect();
  const origin = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  listen.on('notification', (n) => {
    if (n.channel !== CHANNEL || !n.payload) return;
    const [from, workspaceId, conversationId, seq] = n.payload.split('\t');
    if (from !== origin && workspaceId && conversationId) hub.remotePublished(workspaceId, conversationId, Number(seq));
  });
  await listen.query(`LISTEN ${CHANNEL}`);
  // Coalesced: one notification per conversation per tick, however many events it stored.
  const pending = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  hub.onPublished = (workspaceId, conversationId, seq) => {
    pending.set(`${workspaceId}\t${conversationId}`, `${origin}\t${workspaceId}\t${conversationId}\t${seq}`);
    timer ??= setTimeout(() => {
      timer = undefined;
      const payloads = [...pending.values()];
      pending.clear();
      for (const p of payloads) void notify.query('SELECT pg_notify($1, $2)', [CHANNEL, p]).catch(() => undefined);
    }, 20);
  };
  return {
    close: async () => {
      clearTimeout(timer);
      await Promise.all([listen.end(), notify.end()]).catch(() => undefined);
    },
  };
}
