/**
 * @module The control plane's copy of every conversation's events, fed by workspace tunnels. Keyed by
 * (workspace, conversation, seq): a resent event is ignored, and one workspace cannot write into another's.
 */
import type { Db } from './db.js';
import type { AnyEvent } from '../protocol/events.js';

export class EventStore {
  constructor(private readonly db: Db) {}

  /** Stores batches from several workspaces in one transaction (the tunnel tracks contiguity, so no read-back). */
  async appendMany(batches: Array<{ workspaceId: string; events: AnyEvent[] }>): Promise<void> {
    const rows = batches.flatMap((b) => b.events.map((e) => [b.workspaceId, e.conversationId, e.seq, e.time, e.type, JSON.stringify(e.data)] as const));
    if (!rows.length) return;
    await this.db.tx(async (q) => {
      // Multi-row inserts: one round trip per 100 events on PostgreSQL, and far fewer statements on SQLite.
      for (let i = 0; i < rows.length; i += 100) {
        const chunk = rows.slice(i, i + 100);
        const values = chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ');
        await q.run(`INSERT INTO events (workspace_id, conversation_id, seq, time, type, data) VALUES ${values} ON CONFLICT DO NOTHING`, chunk.flat());
      }
      // Replayable: every event is in its daemon's log on the workspace volume, and a reconnecting daemon resends
      // whatever the store lacks (the welcome carries the store's own numbers), so the commit need not wait for
      // the disk: followers see events a disk flush sooner.
    }, { replayable: true });
  }

  /**
   * The highest seq stored without a gap before it. Batches are stored in order, so the plain maximum is
   * contiguous except after a daemon's log was reset; counting guards against acknowledging past a hole.
   */
  async lastSeq(workspaceId: string, conversationId: string): Promise<number> {
    const r = await this.db.get<{ n: number; m: number | null }>('SELECT COUNT(*) AS n, MAX(seq) AS m FROM events WHERE workspace_id = ? AND conversation_id = ?', [workspaceId, conversationId]);
    const n = Number(r?.n ?? 0);
    const m = Number(r?.m ?? 0);
    return n === m ? m : this.contiguousPrefix(workspaceId, conversationId);
  }

  private async contiguousPrefix(workspaceId: string, conversationId: string): Promise<number> {
    const rows = await this.db.all<{ seq: number }>('SELECT seq FROM events WHERE workspace_id = ? AND conversation_id = ? ORDER BY seq', [workspaceId, conversationId]);
    let last = 0;
    for (const r of rows) {
      if (Number(r.seq) !== last + 1) break;
      last = Number(r.seq);
    }
    return last;
  }

  async lastSeqs(workspaceId: string): Promise<Record<string, number>> {
    const rows = await this.db.all<{ conversation_id: string }>('SELECT DISTINCT conversation_id FROM events WHERE workspace_id = ?', [workspaceId]);
    return Object.fromEntries(await Promise.all(rows.map(async (r) => [r.conversation_id, await this.lastSeq(workspaceId, r.conversation_id)] as const)));
  }

  async read(workspaceId: string, conversationId: string, from: number, limit = 1000): Promise<AnyEvent[]> {
    const rows = await this.db.all<{ seq: number; time: string; type: string; data: string }>(
      'SELECT seq, time, type, data FROM events WHERE workspace_id = ? AND conversation_id = ? AND seq >= ? ORDER BY seq LIMIT ?',
      [workspaceId, conversationId, from, limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), time: r.time, conversationId, type: r.type, data: JSON.parse(r.data) }) as AnyEvent);
  }

  /** Events of some types across one owner's workspaces (approvals pending anywhere, say). */
  async ofTypes(ownerId: string, types: string[]): Promise<Array<AnyEvent & { workspaceId: string }>> {
    const rows = await this.db.all<{ workspace_id: string; conversation_id: string; seq: number; time: string; type: string; data: string }>(
      `SELECT e.* FROM events e JOIN workspaces w ON w.id = e.workspace_id
       WHERE w.owner_id = ? AND e.type IN (${types.map(() => '?').join(', ')}) ORDER BY e.time, e.seq`,
      [ownerId, ...types],
    );
    return rows.map((r) => ({ workspaceId: r.workspace_id, conversationId: r.conversation_id, seq: Number(r.seq), time: r.time, type: r.type, data: JSON.parse(r.data) }) as AnyEvent & { workspaceId: string });
  }
}
