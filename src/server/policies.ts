/**
 * @module Policies that act on their own: periodic snapshots, idle auto-stop and auto-delete of long-stopped workspaces. Several
 * control-plane processes may share one database, so each action is taken under a lease and re-checked after
 * taking it: whichever process wins does it once, the others see it done.
 */
import { errorMessage } from '../protocol/errors.js';
import type { ControlPlane } from './control-plane.js';
import type { WorkspaceRow } from '../store/state.js';

const LEASE_MS = 5 * 60_000;

export class PolicyRunner {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** When each workspace was last snapshotted, as far as this process knows. */
  private readonly lastSnapshot = new Map<string, number>();

  constructor(private readonly cp: ControlPlane) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.cp.policy.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Viewers and terminals attached here count as activity for every process (they read the database).
      for (const id of this.cp.attachedWorkspaces()) this.cp.touch(id, true);
      const busy = new Set(
        (await this.cp.store.listConversations()).filter((c) => c.info && ['working', 'waiting-approval', 'tui'].includes(c.info.state)).map((c) => c.workspaceId),
      );
      for (const w of await this.cp.store.listWorkspaces()) {
        // Periodic snapshots run whether or not an agent is working: that is when there is most to lose.
        if (await this.snapshotDue(w)) {
          const slot = Math.floor(Date.now() / (this.cp.snapshotIntervalSeconds! * 1000));
          await this.act(`snapshot:${w.id}:${slot}`, w, (fresh) => fresh.status === 'running', 'policy.snapshot', async (s) => {
            this.lastSnapshot.set(w.id, Date.now());
            await s.snapshots.take(w.id, { reason: 'periodic' });
          });
        }
        if (busy.has(w.id)) continue;
        if (this.idleExpired(w)) await this.act(`idle-stop:${w.id}:${w.startedAt}`, w, (fresh) => this.idleExpired(fresh), 'policy.idle-stop', (s) => s.workspaces.down(w.id, { reason: 'idle' }));
        else if (this.deleteDue(w)) await this.act(`auto-delete:${w.id}:${w.stoppedAt}`, w, (fresh) => this.deleteDue(fresh), 'policy.auto-delete', (s) => s.workspaces.delete(w.id, { purge: false }));
      }
    } catch (e) {
      process.stderr.write(`claude-vm server: policy pass failed: ${errorMessage(e)}\n`);
    } finally {
      this.running = false;
    }
  }

  private async snapshotDue(w: WorkspaceRow): Promise<boolean> {
    const every = this.cp.snapshotIntervalSeconds;
    if (!every || !this.cp.snapshots || w.status !== 'running') return false;
    if (!this.lastSnapshot.has(w.id)) {
      const latest = await this.cp.snapshots.latest(w.id).catch(() => undefined);
      // A workspace never snapshotted counts from its start, so a fresh one is not snapshotted at once.
      this.lastSnapshot.set(w.id, Date.parse(latest?.createdAt ?? w.startedAt ?? w.updatedAt));
    }
    return Date.now() - this.lastSnapshot.get(w.id)! >= every * 1000;
  }

  private idleExpired(w: WorkspaceRow): boolean {
    if (w.status !== 'running' || !w.autoStopSeconds) return false;
    if (this.cp.tunnels.busy(w.id) || this.cp.isAttached(w.id)) return false;
    const last = Date.parse(w.lastActivityAt ?? w.startedAt ?? w.updatedAt);
    return Date.now() - last >= w.autoStopSeconds * 1000;
  }

  private deleteDue(w: WorkspaceRow): boolean {
    const after = this.cp.policy.autoDeleteSeconds;
    if (after === null || w.status !== 'stopped' || !w.stoppedAt) return false;
    return Date.now() - Date.parse(w.stoppedAt) >= after * 1000;
  }

  /**
   * The lease key names this very occurrence (the run or the stop it ends), so a later idle period of the same
   * workspace is a new action, while two processes looking at the same one contend for one key.
   */
  private async act(
    key: string,
    w: WorkspaceRow,
    stillDue: (fresh: WorkspaceRow) => boolean,
    action: string,
    run: (s: ReturnType<ControlPlane['services']>) => Promise<unknown>,
  ): Promise<void> {
    if (!w.ownerId) return;
    if (!(await this.cp.policyStore.acquire(key, this.cp.instanceId, LEASE_MS))) return;
    const fresh = await this.cp.store.getWorkspace(w.id);
    if (!fresh || !stillDue(fresh)) return;
    const owner = await this.cp.auth.getUser(w.ownerId);
    if (!owner) return;
    try {
      await run(this.cp.services({ userId: owner.id, name: owner.name, isAdmin: owner.isAdmin }));
      await this.cp.auth.audit({ userId: null, action, target: w.id, detail: { by: this.cp.instanceId } });
    } catch (e) {
      await this.cp.auth.audit({ userId: null, action: `${action}.failed`, target: w.id, detail: { error: errorMessage(e) } });
    }
  }
}
