/**
 * @module Everything one control-plane process holds: the stores, the tunnels and event hub, policies, and the
 * per-user services built for each request (so a service can only ever see its own user's things).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { StateStore } from '../store/state.js';
import { AuthStore } from '../store/auth.js';
import { EventStore } from '../store/events.js';
import { PolicyStore } from '../store/policy.js';
import type { SecretBox } from '../store/secrets.js';
import { ProviderService } from '../core/providers.js';
import { PROVIDER_TYPES } from '../providers/registry.js';
import { WorkspaceService, type WorkspaceHooks } from '../core/workspaces.js';
import { AgentService } from '../core/agents.js';
import { ConversationService } from '../core/conversations.js';
import { SnapshotService, snapshotTarget } from '../core/snapshots.js';
import { GateRulesService } from '../core/gate-rules.js';
import type { SnapshotStore } from '../snapshots/engine.js';
import { RESTORING_MARKER } from '../snapshots/agent.js';
import { run } from '../core/run-in-workspace.js';
import { restoreStoredEvents } from './restore-events.js';
import type { Principal } from '../core/principal.js';
import type { ControlPlaneEndpoints } from '../providers/provider.js';
import { EventHub } from './event-hub.js';
import { TunnelHub } from './tunnels.js';
import { TunnelDaemons } from './daemons.js';
import { forwardDaemonCall } from './forward.js';
import { NotificationStore } from '../store/notifications.js';
import { UserStreams } from './user-streams.js';
import { Notifier } from './notifier.js';
import type { EventPayloads } from '../protocol/events.js';
import { dirname } from 'node:path';
import { UserError } from '../protocol/errors.js';

export { DEFAULT_POLICY } from './policy-defaults.js';

export interface PolicyConfig {
  /** Running workspaces per user. */
  maxRunning: number;
  /** Workspace launches (create or start) per user per rolling hour. */
  launchesPerHour: number;
  /** Default idle auto-stop for new workspaces, in seconds; null: never. */
  idleStopSeconds: number | null;
  /** Delete workspaces stopped this long, in seconds (their data is kept); null: never. */
  autoDeleteSeconds: number | null;
  /** How often policies are evaluated. */
  intervalMs: number;
}


export interface UserServices {
  principal: Principal;
  providers: ProviderService;
  workspaces: WorkspaceService;
  agents: AgentService;
  conversations: ConversationService;
  snapshots: SnapshotService;
  rules: GateRulesService;
}

export class ControlPlane {
  readonly store: StateStore;
  readonly auth: AuthStore;
  readonly events: EventStore;
  readonly policyStore: PolicyStore;
  readonly hub: EventHub;
  readonly tunnels: TunnelHub;
  readonly daemons: TunnelDaemons;
  readonly notifications: NotificationStore;
  readonly streams = new UserStreams();
  readonly notifier: Notifier;
  /** Workspace owners, for routing live updates (a workspace never changes owner). */
  private readonly owners = new Map<string, string>();
  /** This process, in leases and logs. */
  readonly instanceId = `cp-${randomBytes(4).toString('hex')}`;
  /** Open viewer streams and terminals per workspace: a workspace with someone attached is not idle. */
  private readonly attached = new Map<string, number>();
  private readonly lastTouch = new Map<string, number>();
  /** Where snapshots go (a directory under the home unless --snapshot-store says otherwise); undefined: off. */
  snapshots: SnapshotStore | undefined;
  /** Snapshot running workspaces this often; null: only on down, delete and demand. */
  snapshotIntervalSeconds: number | null = null;

  constructor(
    readonly db: Db,
    readonly box: SecretBox,
    readonly home: string,
    readonly endpoints: ControlPlaneEndpoints,
    readonly policy: PolicyConfig,
  ) {
    this.store = new StateStore(db, box);
    this.auth = new AuthStore(db);
    this.events = new EventStore(db);
    this.policyStore = new PolicyStore(db);
    this.hub = new EventHub(this.events);
    this.tunnels = new TunnelHub(this.store, this.events, this.hub);
    this.daemons = new TunnelDaemons(this.tunnels, this.auth, endpoints, {
      instance: this.instanceId,
      holder: (id) => this.policyStore.tunnelHolder(id),
      forward: (url, id, method, params) => forwardDaemonCall(url, this.box, { workspaceId: id, method, params }),
      forget: (id, instance) => this.policyStore.releaseTunnel(id, instance),
    });
    this.hub.onActivity = (id) => this.touch(id);
    this.tunnels.onConnected = (id) => this.policyStore.claimTunnel(id, this.instanceId, endpoints.internalUrl ?? endpoints.url);
    this.tunnels.onDisconnected = (id) => this.policyStore.releaseTunnel(id, this.instanceId);
    this.notifications = new NotificationStore(db, box);
    this.notifier = new Notifier(this.store, this.notifications, this.streams, endpoints.publicUrl ?? 'mailto:admin@localhost');
    this.tunnels.onConversation = (id, info) => void this.ownerOf(id).then((u) => u && this.streams.publish(u, 'conversation', info));
    this.hub.stored.add((id, e) => {
      void this.notifier.onEvent(id, e).catch(() => undefined);
      if (e.type === 'approval.requested' || e.type === 'approval.decided') void this.publishApprovals(id);
    });
  }

  /** Re-opens the connections that remote workspaces' daemons reach this control plane through (after a restart). */
  async keepProvidersConnected(): Promise<void> {
    const inUse = new Set((await this.store.listWorkspaces()).filter((w) => w.status === 'running').map((w) => w.provider));
    for (const row of await this.store.listProviders()) {
      if (inUse.has(row.name)) PROVIDER_TYPES[row.type]?.keepConnected?.(row.options, this.home);
    }
  }

  async ownerOf(workspaceId: string): Promise<string | undefined> {
    if (!this.owners.has(workspaceId)) {
      const w = await this.store.getWorkspace(workspaceId);
      if (w?.ownerId) this.owners.set(workspaceId, w.ownerId);
    }
    return this.owners.get(workspaceId);
  }

  /** Approval requests still waiting, across one user's conversations. */
  async pendingApprovals(userId: string): Promise<Array<EventPayloads['approval.requested'] & { conversationId: string; workspaceId: string; requestedAt: string }>> {
    const events = await this.events.ofTypes(userId, ['approval.requested', 'approval.decided']);
    const decided = new Set(events.filter((e) => e.type === 'approval.decided').map((e) => (e.data as EventPayloads['approval.decided']).approvalId));
    return events
      .filter((e) => e.type === 'approval.requested' && !decided.has((e.data as EventPayloads['approval.requested']).approvalId))
      .map((e) => ({ ...(e.data as EventPayloads['approval.requested']), conversationId: e.conversationId, workspaceId: e.workspaceId, requestedAt: e.time }));
  }

  private async publishApprovals(workspaceId: string): Promise<void> {
    const owner = await this.ownerOf(workspaceId);
    if (owner && this.streams.has(owner)) this.streams.publish(owner, 'approvals', await this.pendingApprovals(owner));
  }

  /** Labels every Docker resource with the control plane it belongs to (a hash of its home, never the path). */
  get ownerLabel(): string {
    return createHash('sha256').update(this.home).digest('hex').slice(0, 12);
  }

  services(principal: Principal): UserServices {
    const providers = new ProviderService(this.store, this.home, principal);
    const workspaces = new WorkspaceService(this.store, providers, this.ownerLabel, principal, {
      beforeLaunch: (userId) => this.checkLaunch(userId),
      connectDaemon: async (t, progress) => {
        await this.daemons.ensure(t, progress);
        // Where "changes since the workspace began" start: recorded once, before any agent runs.
        await this.daemons.call(t, 'git.base', {}).catch(() => undefined);
      },
      controlPlaneSocketDir: dirname(this.endpoints.socketPath),
      controlPlanePublicUrl: this.endpoints.publicUrl,
      defaultAutoStopSeconds: this.policy.idleStopSeconds,
      audit: (action, target, detail) => this.auth.audit({ userId: principal.userId, action, target, detail: detail ?? {} }),
      ...(this.snapshots ? this.snapshotHooks(this.snapshots) : {}),
    });
    const agents = new AgentService(this.store, principal.userId);
    const conversations = new ConversationService(this.store, workspaces, agents, this.daemons, this.hub, principal);
    const rules = new GateRulesService(this.store, workspaces, this.daemons);
    return { principal, providers, workspaces, agents, conversations, snapshots: new SnapshotService(workspaces, this.snapshots), rules };
  }

  private snapshotHooks(snapshots: SnapshotStore): Pick<WorkspaceHooks, 'snapshot' | 'restore' | 'purgeSnapshots'> {
    return {
      snapshot: async (w, t, reason, progress) => void (await snapshots.take(snapshotTarget(w, t), reason, progress)),
      restore: async (t, progress) => {
        const latest = await snapshots.latest(t.workspaceId);
        if (!latest) return 'no-snapshot';
        // Only into an empty or half-restored volume: one that survived (a kept Docker volume) is newer than any
        // snapshot of it.
        const root = t.provider.workspaceRoot(t.refs);
        const probe = await run(t.provider, t.refs, ['sh', '-c', 'if [ -e "$2" ]; then echo half-restored; elif [ -e "$1" ]; then echo has-data; fi', 'sh', t.projectDir, `${root}/${RESTORING_MARKER}`]);
        if (probe.output.includes('has-data')) return 'has-data';
        progress({ step: 'Restoring', detail: `snapshot ${latest.id} (${(latest.bytes / 1e6).toFixed(1)} MB)` });
        await snapshots.restore(t, latest.id, progress);
        const backfilled = await restoreStoredEvents(t, this.events);
        if (backfilled) progress({ step: 'Restoring conversations', detail: `${backfilled} events newer than the snapshot, from the control plane` });
        return 'restored';
      },
      purgeSnapshots: (id) => snapshots.purge(id),
    };
  }

  /** Seed 000's limits: running workspaces and launches per hour, per user. */
  private async checkLaunch(userId: string): Promise<void> {
    const running = await this.store.countRunning(userId);
    if (running >= this.policy.maxRunning) {
      throw new UserError('limit_exceeded', `You have ${running} running workspaces, the most allowed.`, 'Stop one with `claude-vm workspace down <id>` first.');
    }
    const since = new Date(Date.now() - 3600_000);
    const launches = await this.policyStore.launchesSince(userId, since);
    if (launches >= this.policy.launchesPerHour) {
      throw new UserError('limit_exceeded', `You launched ${launches} workspaces in the last hour, the most allowed.`, 'Wait a while, or ask an admin to raise --launches-per-hour.');
    }
    await this.policyStore.recordLaunch(userId);
  }

  attach(workspaceId: string): () => void {
    this.attached.set(workspaceId, (this.attached.get(workspaceId) ?? 0) + 1);
    this.touch(workspaceId, true);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.attached.get(workspaceId) ?? 1) - 1;
      if (n <= 0) this.attached.delete(workspaceId);
      else this.attached.set(workspaceId, n);
      this.touch(workspaceId, true);
    };
  }

  attachedWorkspaces(): string[] {
    return [...this.attached.keys()];
  }

  isAttached(workspaceId: string): boolean {
    return (this.attached.get(workspaceId) ?? 0) > 0;
  }

  /** Records activity; written at most every 10 s per workspace unless forced. */
  touch(workspaceId: string, force = false): void {
    const t = Date.now();
    if (!force && t - (this.lastTouch.get(workspaceId) ?? 0) < 10_000) return;
    this.lastTouch.set(workspaceId, t);
    void this.store.updateWorkspace(workspaceId, { lastActivityAt: new Date(t).toISOString() }).catch(() => undefined);
  }
}
