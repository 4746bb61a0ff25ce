/**
 * @module What policies need from the database: leases, so that of several control-plane processes on one
 * database exactly one carries out a given action, and the launch history behind the hourly launch limit.
 */
import type { Db } from './db.js';

export class PolicyStore {
  constructor(private readonly db: Db) {}

  /**
   * Takes `key` for `ttlMs` unless another holder has it. One statement (an upsert that only overwrites an
   * expired lease or our own), so two processes racing cannot both win.
   */
  async acquire(key: string, holder: string, ttlMs: number): Promise<boolean> {
    const nowIso = new Date().toISOString();
    const until = new Date(Date.now() + ttlMs).toISOString();
    const r = await this.db.run(
      `INSERT INTO leases (key, holder, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.expires_at < ? OR leases.holder = excluded.holder`,
      [key, holder, until, nowIso],
    );
    return r.changes > 0;
  }

  async release(key: string, holder: string): Promise<void> {
    await this.db.run('DELETE FROM leases WHERE key = ? AND holder = ?', [key, holder]);
  }

  async recordLaunch(userId: string): Promise<void> {
    await this.db.run('INSERT INTO launches (user_id, at) VALUES (?, ?)', [userId, new Date().toISOString()]);
  }

  async launchesSince(userId: string, since: Date): Promise<number> {
    const r = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM launches WHERE user_id = ? AND at >= ?', [userId, since.toISOString()]);
    return Number(r?.n ?? 0);
  }

  /** Records that `instance` holds the tunnel of a workspace (team mode: other processes forward to it). */
  async claimTunnel(workspaceId: string, instance: string, url: string): Promise<void> {
    await this.db.run(
      `INSERT INTO tunnels (workspace_id, instance, url, connected_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (workspace_id) DO UPDATE SET instance = excluded.instance, url = excluded.url, connected_at = excluded.connected_at`,
      [workspaceId, instance, url, new Date().toISOString()],
    );
  }

  async releaseTunnel(workspaceId: string, instance: string): Promise<void> {
    await this.db.run('DELETE FROM tunnels WHERE workspace_id = ? AND instance = ?', [workspaceId, instance]);
  }

  async tunnelHolder(workspaceId: string): Promise<{ instance: string; url: string } | undefined> {
    return this.db.get<{ instance: string; url: string }>('SELECT instance, url FROM tunnels WHERE workspace_id = ?', [workspaceId]);
  }
}
