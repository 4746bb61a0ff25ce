/** @module Workspace lifecycle: up (create or resume), list, down, delete, exec, shell, logs. */
import { posix } from 'node:path';
import { UserError, errorMessage } from '../protocol/errors.js';
import type { ProgressFn, SnapshotReason, UpRequest, WorkspaceInfo, WorkspaceStatus } from '../protocol/types.js';
import type { ExecHandle, ExecOptions, LogOptions, Provider, ResourceRefs, WorkspaceSpec } from '../providers/provider.js';
import { egressInfo, normalizeAllowList } from '../providers/egress-policy.js';
import { workspaceEgress } from './egress.js';
import { newId, newWorkspaceId } from '../store/ids.js';
import type { StateStore, WorkspaceRow } from '../store/state.js';
import { DEFAULT_IMAGE } from './defaults.js';
import { populate } from './populate.js';
import { readProjectRules } from './gate-rules.js';
import type { ProviderService } from './providers.js';
import { currentBranch, looksLikeGitUrl, looksLikePath, resolveSource, type Source } from './sources.js';
import type { Principal } from './principal.js';
import { PROVIDER_TYPES } from '../providers/registry.js';

/** What the control plane adds around the lifecycle: policies, and connecting the workspace daemon. */
export interface WorkspaceHooks {
  /** Throws a `limit_exceeded` UserError when this user may not start another workspace now. */
  beforeLaunch?(ownerId: string, kind: 'create' | 'start'): Promise<void>;
  /** Installs (if needed) and starts the workspace daemon, and waits until its tunnel is up. */
  connectDaemon?(t: WorkspaceTarget, progress: ProgressFn): Promise<void>;
  /** Mounted into containers on a local engine so their daemons can dial the control plane. */
  controlPlaneSocketDir?: string;
  /** The server's `--public-url`, which workspaces on remote providers dial. */
  controlPlanePublicUrl?: string;
  defaultAutoStopSeconds?: number | null;
  /** Saves the workspace (snapshot) before it stops or goes. A failure is reported, and never blocks the stop. */
  snapshot?(w: WorkspaceRow, t: WorkspaceTarget, reason: SnapshotReason, progress: ProgressFn): Promise<void>;
  /** Fills an empty volume from the workspace's latest snapshot, unless the volume has data or there is no snapshot. */
  restore?(t: WorkspaceTarget, progress: ProgressFn): Promise<'restored' | 'has-data' | 'no-snapshot'>;
  /** `delete --purge`: the snapshots go too. */
  purgeSnapshots?(workspaceId: string): Promise<void>;
  /** Audit trail of lifecycle actions. */
  audit?(action: string, target: string, detail?: Record<string, unknown>): Promise<void>;
}

export interface WorkspaceTarget {
  provider: Provider;
  refs: ResourceRefs;
  workspaceId: string;
  projectDir: string;
  ownerId: string;
}

export interface UpResult {
  workspace: WorkspaceInfo;
  action: 'created' | 'started' | 'already-running';
  /** Things the user should know (no isolation, fallback provider). */
  notices: string[];
}

export interface ListFilter {
  status?: WorkspaceStatus;
}

export type ExecRequest = Omit<ExecOptions, 'cwd' | 'asRoot'>;

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export class WorkspaceService {
  constructor(
    private readonly store: StateStore,
    private readonly providers: ProviderService,
    /** Labels every resource with the control plane it belongs to, so several can share one engine. */
    private readonly owner: string,
    private readonly principal: Principal,
    private readonly hooks: WorkspaceHooks = {},
  ) {}

  async up(req: UpRequest, progress: ProgressFn = () => undefined): Promise<UpResult> {
    const target = req.target;
    if (target && !looksLikeGitUrl(target)) {
      const existing = await this.findExact(target);
      if (existing) return this.resume(existing, req, progress);
      if (!looksLikePath(target)) {
        const byPrefix = await this.matches(target);
        if (byPrefix.length === 1) return this.resume(byPrefix[0]!, req, progress);
        if (byPrefix.length > 1) throw ambiguous(target, byPrefix);
      }
    }
    return this.create(req, progress);
  }

  private async create(req: UpRequest, progress: ProgressFn): Promise<UpResult> {
    // Everything that can be checked without side effects is checked first.
    let source: Source;
    try {
      source = resolveSource(req.target);
    } catch (e) {
      if (e instanceof UserError && e.code === 'not_found' && req.target && !looksLikePath(req.target)) {
        throw new UserError('not_found', `No workspace, directory or repository matches "${req.target}".`, 'See `claude-vm workspace list`, or pass ./path or a git URL.');
      }
      throw e;
    }
    const branch = req.branch ?? (source.sourceKind === 'path' ? currentBranch(source.source) : null);
    return this.build(source, req, branch, async (t) => {
      await populate(t.provider, t.refs, source, t.projectDir, req.branch ?? null, progress);
      // The project's approval rules, read now: no agent has run here yet, so the file is the source's own.
      const rules = await readProjectRules(t.provider, t.refs, t.projectDir);
      if (rules !== null) await this.store.setGateRules(t.workspaceId, rules);
    }, progress);
  }

  /**
   * A new workspace whose files come from `fill` instead of its source (`workspace import`). Rolled back whole on
   * failure, like any new workspace.
   */
  createFrom(project: Source, req: UpRequest, branch: string | null, fill: (t: WorkspaceTarget) => Promise<void>, progress: ProgressFn = () => undefined): Promise<UpResult> {
    return this.build(project, req, branch, fill, progress);
  }

  private async build(source: Source, req: UpRequest, branch: string | null, fill: (t: WorkspaceTarget) => Promise<void>, progress: ProgressFn): Promise<UpResult> {
    if (req.name !== undefined) {
      if (!NAME.test(req.name)) throw new UserError('invalid_argument', `Invalid workspace name "${req.name}".`, 'Use lower-case letters, digits and dashes (at most 40).');
      if (await this.store.nameTaken(req.name)) {
        throw new UserError('already_exists', `A workspace named "${req.name}" already exists.`, 'Pick another --name, or resume it with `claude-vm workspace up ' + req.name + '`.');
      }
    }
    if (req.autoStopSeconds !== undefined && !(Number.isInteger(req.autoStopSeconds) && req.autoStopSeconds >= 0)) {
      throw new UserError('invalid_argument', `The auto-stop time must be a whole number of seconds, not "${req.autoStopSeconds}".`, 'Use 0 to never stop automatically.');
    }
    const allowDomains = normalizeAllowList(req.allowDomains ?? []);
    const chosen = await this.providers.choose(req.provider);
    const factory = PROVIDER_TYPES[chosen.row.type]!;
    const size = req.size ?? factory.defaultSize;
    if (!factory.sizes[size]) {
      throw new UserError('invalid_argument', `The ${chosen.row.type} provider has no size "${size}".`, `Sizes: ${Object.keys(factory.sizes).join(', ')}.`);
    }
    await this.hooks.beforeLaunch?.(this.principal.userId, 'create');
    const provider = this.providers.instantiate(chosen.row);
    const notices = chosen.notice ? [chosen.notice] : [];
    if (!provider.isolates) notices.push(`The ${chosen.row.name} provider does not isolate: commands and agents run as you, on this machine, with your files and network.`);
    const image = req.image || DEFAULT_IMAGE;
    progress({ step: 'Checking provider', detail: chosen.row.name });
    await provider.check({ image }, progress);

    let id = newWorkspaceId();
    while (await this.store.getWorkspace(id)) id = newWorkspaceId();
    const project = await this.store.findOrCreateProject(source, () => newId('prj'));
    const spec = await this.spec(id, image, project, size, allowDomains);
    const autoStop = req.autoStopSeconds ?? this.hooks.defaultAutoStopSeconds ?? null;

    await this.store.insertWorkspace({
      id,
      name: req.name ?? null,
      projectId: project.id,
      provider: chosen.row.name,
      image,
      branch,
      projectDir: '',
      status: 'creating',
      ownerId: this.principal.userId,
      size,
      autoStopSeconds: autoStop === 0 ? null : autoStop,
      allowDomains,
    });
    let refs: ResourceRefs | undefined;
    try {
      refs = await provider.create(spec, progress);
      const projectDir = posix.join(provider.workspaceRoot(refs), project.name);
      await this.store.updateWorkspace(id, { resources: refs, projectDir });
      await provider.start(refs, progress);
      await fill({ provider, refs, workspaceId: id, projectDir, ownerId: this.principal.userId });
      await this.store.updateWorkspace(id, { status: 'running', statusReason: null, startedAt: new Date().toISOString(), lastActivityAt: new Date().toISOString() });
      if (refs.egressMode === 'open') notices.push('Network egress is open: this workspace can reach any address (see docs/security.md, "Network egress").');
      notices.push(...(await this.connect({ provider, refs, workspaceId: id, projectDir, ownerId: this.principal.userId }, progress)));
    } catch (e) {
      // Roll back completely: a failed `up` of a new workspace leaves no container, volume or row.
      progress({ step: 'Cleaning up', detail: errorMessage(e) });
      if (refs) await provider.delete(refs, { purge: true }).catch(() => undefined);
      await this.store.deleteWorkspace(id);
      await this.store.deleteProjectIfUnused(project.id);
      throw e;
    }
    await this.hooks.audit?.('workspace.create', id, { provider: chosen.row.name, image, size });
    return { workspace: await this.info(id), action: 'created', notices };
  }

  private async resume(w: WorkspaceRow, req: UpRequest, progress: ProgressFn): Promise<UpResult> {
    if (req.image || req.branch || req.name || req.allowDomains?.length) {
      throw new UserError('invalid_argument', `Workspace ${w.id} already exists; --image, --branch, --name and --allow-domain only apply to new workspaces.`);
    }
    if (req.provider && req.provider !== w.provider) return this.move(w, req.provider, progress);
    const row = await this.providers.require(w.provider);
    const provider = this.providers.instantiate(row);
    const notices = provider.isolates ? [] : [`The ${row.name} provider does not isolate: commands run as you, on this machine.`];
    const current = w.status === 'deleted' ? { state: 'missing' as const } : await provider.status(w.resources);
    if (current.state === 'running') {
      if (w.status !== 'running') await this.store.updateWorkspace(w.id, { status: 'running', statusReason: null });
      return { workspace: await this.info(w.id), action: 'already-running', notices };
    }
    await this.hooks.beforeLaunch?.(this.principal.userId, 'start');
    await this.store.updateWorkspace(w.id, { status: 'starting', statusReason: null });
    try {
      let refs = w.resources;
      if (current.state === 'missing') {
        // The compute is gone but the data may not be: recreate around the kept volume or directory.
        progress({ step: 'Recreating workspace', detail: 'from its kept data' });
        await provider.check({ image: w.image }, progress);
        await provider.delete(refs, { purge: false }).catch(() => undefined);
        refs = await provider.create(await this.spec(w.id, w.image, w.project, w.size, w.allowDomains), progress);
        await this.store.updateWorkspace(w.id, { resources: refs });
      }
      await provider.start(refs, progress);
      const t = { provider, refs, workspaceId: w.id, projectDir: w.projectDir, ownerId: w.ownerId ?? this.principal.userId };
      // A recreated workspace whose volume is gone too (deleted, pruned, another host): its snapshot brings it back.
      if (current.state === 'missing' && (await this.hooks.restore?.(t, progress)) === 'restored') notices.push(`Restored ${w.id} from its latest snapshot.`);
      await this.store.updateWorkspace(w.id, { status: 'running', statusReason: null, startedAt: new Date().toISOString(), lastActivityAt: new Date().toISOString() });
      notices.push(...(await this.connect(t, progress)));
    } catch (e) {
      // A container recreated around a failed restore must not run on as if it were the workspace: the next `up`
      // recreates it again (and the restore marker makes it restore again).
      if (current.state === 'missing') {
        const refs = (await this.store.getWorkspace(w.id))?.resources ?? w.resources;
        await provider.delete(refs, { purge: false }).catch(() => undefined);
      }
      await this.store.updateWorkspace(w.id, { status: 'error', statusReason: `Start failed: ${errorMessage(e)}` });
      throw e;
    }
    await this.hooks.audit?.('workspace.start', w.id);
    return { workspace: await this.info(w.id), action: 'started', notices };
  }

  /**
   * Moves a workspace to another provider through its snapshot: stop (which snapshots), create on the new provider,
   * restore, and only then let go of the old data. Until the restore has succeeded the old volume is untouched (its
   * container goes first), so a failed move leaves a workspace that `up` recreates where it was.
   */
  private async move(w: WorkspaceRow, to: string, progress: ProgressFn): Promise<UpResult> {
    if (!this.hooks.restore) throw new UserError('wrong_state', `Workspace ${w.id} lives on provider "${w.provider}", and moving it needs snapshots, which this server has switched off.`);
    const row = await this.providers.require(to);
    const provider = this.providers.instantiate(row);
    const old = await this.providerFor(w);
    if (w.status === 'running') await this.down(w.id, {}, progress);
    await this.hooks.beforeLaunch?.(this.principal.userId, 'start');
    progress({ step: 'Moving', detail: `${w.provider} → ${to}` });
    await provider.check({ image: w.image }, progress);
    // The old compute goes first: both providers may share one engine, where the two would clash by name.
    await old.delete(w.resources, { purge: false }).catch(() => undefined);
    const refs = await provider.create(await this.spec(w.id, w.image, w.project, w.size, w.allowDomains), progress);
    const projectDir = posix.join(provider.workspaceRoot(refs), w.project.name);
    const t = { provider, refs, workspaceId: w.id, projectDir, ownerId: w.ownerId ?? this.principal.userId };
    // Both providers on one engine name the volume alike: then it is the same volume, and never purged here.
    const shared = Object.values(refs).some((v) => Object.values(w.resources).includes(v));
    try {
      await provider.start(refs, progress);
      // 'has-data': both providers use one engine, and the kept volume came along by name.
      if ((await this.hooks.restore(t, progress)) === 'no-snapshot') {
        throw new UserError('wrong_state', `Workspace ${w.id} has no snapshot to move.`, `Take one with \`claude-vm workspace snapshot ${w.id}\` on its provider first.`);
      }
    } catch (e) {
      await provider.delete(refs, { purge: !shared }).catch(() => undefined);
      await this.store.updateWorkspace(w.id, { status: 'stopped', statusReason: `Move to ${to} failed: ${errorMessage(e)}` });
      throw e;
    }
    const notices: string[] = [];
    if (!shared) await old.delete(w.resources, { purge: true }).catch((e) => notices.push(`The old ${w.provider} resources could not be removed: ${errorMessage(e)}`));
    await this.store.updateWorkspace(w.id, { provider: to, resources: refs, projectDir, status: 'running', statusReason: null, startedAt: new Date().toISOString(), lastActivityAt: new Date().toISOString() });
    notices.push(...(await this.connect(t, progress)));
    await this.hooks.audit?.('workspace.move', w.id, { from: w.provider, to });
    return { workspace: await this.info(w.id), action: 'started', notices };
  }

  /** Connects the workspace daemon; an image that cannot run it still gives a usable workspace, with a note. */
  private async connect(t: WorkspaceTarget, progress: ProgressFn): Promise<string[]> {
    if (!this.hooks.connectDaemon) return [];
    try {
      await this.hooks.connectDaemon(t, progress);
      return [];
    } catch (e) {
      if (e instanceof UserError && e.code === 'wrong_state') return [`Agents are unavailable here: ${e.message}${e.hint ? ` ${e.hint}` : ''}`];
      throw e;
    }
  }

  /** Lists workspaces with their live state: the provider is the truth, the store a cache of it. */
  async list(filter: ListFilter = {}): Promise<WorkspaceInfo[]> {
    const rows = await this.store.listWorkspaces(this.principal.userId);
    await Promise.all(rows.map((r) => this.reconcile(r).catch(() => undefined)));
    const infos = await Promise.all(rows.map((r) => this.info(r.id)));
    return infos.filter((w) => (filter.status ? w.status === filter.status : w.status !== 'deleted'));
  }

  async get(ref: string): Promise<WorkspaceInfo> {
    const w = await this.resolve(ref);
    await this.reconcile(w).catch(() => undefined);
    return this.info(w.id);
  }

  async down(ref: string, opts: { force?: boolean; reason?: string } = {}, progress: ProgressFn = () => undefined): Promise<WorkspaceInfo> {
    const w = await this.resolve(ref);
    if (w.status === 'deleted') throw new UserError('wrong_state', `Workspace ${w.id} is deleted.`, `Bring it back with \`claude-vm workspace up ${w.id}\`.`);
    const provider = await this.providerFor(w);
    if (!opts.force) await this.saveBeforeLeaving(w, provider, opts.reason === 'idle' ? 'idle' : 'down', progress);
    await this.store.updateWorkspace(w.id, { status: 'stopping' });
    try {
      await provider.stop(w.resources, opts);
    } catch (e) {
      await this.store.updateWorkspace(w.id, { status: 'error', statusReason: `Stop failed: ${errorMessage(e)}` });
      throw e;
    }
    await this.store.markStopped(w.id, 'stopped');
    await this.hooks.audit?.('workspace.stop', w.id, opts.reason ? { reason: opts.reason } : {});
    return this.info(w.id);
  }

  /**
   * Without purge the compute goes but the data stays (volume or directory), and `up <id>` recreates the workspace.
   * With purge everything goes, including the record.
   */
  async delete(ref: string, opts: { purge?: boolean } = {}, progress: ProgressFn = () => undefined): Promise<{ id: string; purged: boolean }> {
    const w = await this.resolve(ref);
    const provider = await this.providerFor(w);
    if (!opts.purge) await this.saveBeforeLeaving(w, provider, 'delete', progress);
    await this.store.updateWorkspace(w.id, { status: 'deleting' });
    try {
      await provider.delete(w.resources, { purge: !!opts.purge });
    } catch (e) {
      await this.store.updateWorkspace(w.id, { status: 'error', statusReason: `Delete failed: ${errorMessage(e)}` });
      throw e;
    }
    if (opts.purge) {
      await this.hooks.purgeSnapshots?.(w.id);
      await this.store.deleteWorkspace(w.id);
      await this.store.deleteProjectIfUnused(w.project.id);
    } else {
      const { container: _gone, ...kept } = w.resources;
      await this.store.markStopped(w.id, 'deleted');
      await this.store.updateWorkspace(w.id, { resources: kept });
    }
    await this.hooks.audit?.('workspace.delete', w.id, { purge: !!opts.purge });
    return { id: w.id, purged: !!opts.purge };
  }

  /** Snapshots a running workspace before it stops or goes; the files stay on the volume either way, so a failure only warns. */
  private async saveBeforeLeaving(w: WorkspaceRow, provider: Provider, reason: SnapshotReason, progress: ProgressFn): Promise<void> {
    if (!this.hooks.snapshot || w.status !== 'running') return;
    if ((await provider.status(w.resources).catch(() => undefined))?.state !== 'running') return;
    try {
      await this.hooks.snapshot(w, { provider, refs: w.resources, workspaceId: w.id, projectDir: w.projectDir, ownerId: w.ownerId ?? this.principal.userId }, reason, progress);
    } catch (e) {
      progress({ step: 'Snapshot failed', detail: `${errorMessage(e)} (the files stay on the workspace's volume)` });
      await this.hooks.audit?.('workspace.snapshot.failed', w.id, { reason, error: errorMessage(e) });
    }
  }

  async exec(ref: string, req: ExecRequest): Promise<ExecHandle> {
    const w = await this.requireRunning(ref);
    const provider = await this.providerFor(w);
    return provider.exec(w.resources, { ...req, cwd: w.projectDir });
  }

  /**
   * An interactive shell inside the workspace's tmux session `main`, so a later `ssh` reattaches to it.
   * -D detaches other clients: Docker does not end an exec when its client vanishes (a closed laptop), and such
   * orphaned clients would keep the session's size and never go away.
   */
  async shell(ref: string, req: Omit<ExecRequest, 'argv'>): Promise<ExecHandle> {
    const script =
      'if command -v tmux >/dev/null 2>&1; then exec tmux new-session -A -D -s main -c "$PWD"; fi; ' +
      'echo "claude-vm: tmux is not installed in this image; starting a plain shell (it will not persist)." >&2; ' +
      'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi';
    return this.exec(ref, { ...req, argv: ['sh', '-c', script] });
  }

  async logs(ref: string, opts: LogOptions): Promise<void> {
    const w = await this.resolve(ref);
    if (w.status === 'deleted') throw new UserError('wrong_state', `Workspace ${w.id} is deleted; it has no logs.`);
    const provider = await this.providerFor(w);
    await provider.logs(w.resources, opts);
  }

  /** Exact id or name, then a unique prefix of either. */
  async resolve(ref: string): Promise<WorkspaceRow> {
    const exact = await this.findExact(ref);
    if (exact) return exact;
    const m = await this.matches(ref);
    if (m.length === 1) return m[0]!;
    if (m.length > 1) throw ambiguous(ref, m);
    throw new UserError('not_found', `No workspace matches "${ref}".`, 'See `claude-vm workspace list --status deleted` and `claude-vm workspace list`.');
  }

  private async findExact(ref: string): Promise<WorkspaceRow | undefined> {
    return (await this.store.listWorkspaces(this.principal.userId)).find((w) => w.id === ref || w.name === ref);
  }

  private async matches(prefix: string): Promise<WorkspaceRow[]> {
    if (!prefix) return [];
    return (await this.store.listWorkspaces(this.principal.userId)).filter((w) => w.id.startsWith(prefix) || (w.name ?? '').startsWith(prefix));
  }

  /** What a daemon call needs: a running workspace's provider, resources and project directory. */
  async runningTarget(ref: string): Promise<WorkspaceTarget> {
    const w = await this.requireRunning(ref);
    return { provider: await this.providerFor(w), refs: w.resources, workspaceId: w.id, projectDir: w.projectDir, ownerId: w.ownerId ?? this.principal.userId };
  }

  private async requireRunning(ref: string): Promise<WorkspaceRow> {
    const w = await this.resolve(ref);
    await this.reconcile(w).catch(() => undefined);
    const fresh = (await this.store.getWorkspace(w.id))!;
    if (fresh.status !== 'running') {
      throw new UserError('wrong_state', `Workspace ${w.id} is ${fresh.status}${fresh.statusReason ? ` (${fresh.statusReason})` : ''}.`, `Start it with \`claude-vm workspace up ${w.id}\`.`);
    }
    return fresh;
  }

  private async providerFor(w: WorkspaceRow): Promise<Provider> {
    return this.providers.instantiate(await this.providers.require(w.provider));
  }

  /** Brings the stored status in line with what the provider reports (a dockerd restart, a container killed by hand). */
  private async reconcile(w: WorkspaceRow): Promise<void> {
    if (!['running', 'stopped', 'error'].includes(w.status)) return;
    const s = await (await this.providerFor(w)).status(w.resources);
    const next: { status: WorkspaceStatus; reason: string | null } =
      s.state === 'running' ? { status: 'running', reason: null }
      : s.state === 'stopped' ? { status: 'stopped', reason: w.status === 'error' ? w.statusReason : null }
      : { status: 'error', reason: s.detail ?? 'the provider reports an error' };
    if (next.status === w.status && next.reason === w.statusReason) return;
    if (next.status === 'running' || w.status !== 'running') await this.store.updateWorkspace(w.id, { status: next.status, statusReason: next.reason });
    else await this.store.markStopped(w.id, next.status, next.reason);
  }

  /** What a provider is asked to create; the egress allowlist is worked out afresh from the current agent settings. */
  private async spec(id: string, image: string, project: Source, size: string, allowDomains: string[]): Promise<WorkspaceSpec> {
    return {
      id, image, labels: this.labels(id, project.name), env: workspaceEnv(id), size, controlPlaneSocketDir: this.hooks.controlPlaneSocketDir, controlPlanePublicUrl: this.hooks.controlPlanePublicUrl,
      egress: await workspaceEgress(this.store, this.principal.userId, id, project, allowDomains),
    };
  }

  private labels(id: string, project: string): Record<string, string> {
    return { 'dev.claude-vm.workspace': id, 'dev.claude-vm.project': project, 'dev.claude-vm.owner': this.owner };
  }

  private async info(id: string): Promise<WorkspaceInfo> {
    const w = await this.store.getWorkspace(id);
    if (!w) throw new UserError('not_found', `Workspace ${id} no longer exists.`);
    return workspaceInfo(w, await this.store.getProvider(w.provider));
  }
}


/** The public view of a row: no provider resources, with uptime and cost computed to this moment. */
export function workspaceInfo(w: WorkspaceRow, provider: { type: string; options: Record<string, string> } | undefined): WorkspaceInfo {
  const { resources: _r, ownerId: _o, allowDomains: _a, uptimeSeconds, ...rest } = w;
  const running = w.startedAt ? Math.max(0, Math.round((Date.now() - Date.parse(w.startedAt)) / 1000)) : 0;
  const uptime = uptimeSeconds + running;
  const price = provider ? PROVIDER_TYPES[provider.type]?.pricePerHour(w.size, provider.options) ?? 0 : 0;
  const egress = egressInfo(w.resources);
  return { ...rest, providerType: provider?.type ?? 'unknown', uptimeSeconds: uptime, costUsd: Math.round((uptime / 3600) * price * 10000) / 10000, ...(egress ? { egress } : {}) };
}

function workspaceEnv(id: string): Record<string, string> {
  return { CLAUDE_VM_WORKSPACE_ID: id };
}

function ambiguous(ref: string, rows: WorkspaceRow[]): UserError {
  const names = rows.slice(0, 5).map((r) => r.name ? `${r.id} (${r.name})` : r.id).join(', ');
  return new UserError('ambiguous', `"${ref}" matches ${rows.length} workspaces: ${names}.`, 'Type more of the id.');
}
