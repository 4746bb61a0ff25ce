/** @module What a user does with snapshots: take one, list them, export one to a tar file and import it elsewhere. */
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import type { ProgressFn, SnapshotInfo, SnapshotReason, UpRequest } from '../protocol/types.js';
import type { SnapshotStore, SnapshotTarget } from '../snapshots/engine.js';
import { openExport, writeExport } from '../snapshots/export.js';
import type { WorkspaceRow } from '../store/state.js';
import type { UpResult, WorkspaceService, WorkspaceTarget } from './workspaces.js';

export class SnapshotService {
  constructor(
    private readonly workspaces: WorkspaceService,
    private readonly snapshots: SnapshotStore | undefined,
  ) {}

  private get store(): SnapshotStore {
    if (!this.snapshots) throw new UserError('wrong_state', 'Snapshots are switched off on this server.', 'Start it with --snapshot-store.');
    return this.snapshots;
  }

  async take(ref: string, opts: { includeCaches?: boolean; reason?: SnapshotReason }, progress: ProgressFn = () => undefined): Promise<SnapshotInfo> {
    const store = this.store;
    const t = await this.workspaces.runningTarget(ref);
    const w = await this.workspaces.resolve(ref);
    return store.take(snapshotTarget(w, t), opts.reason ?? 'manual', progress, opts.includeCaches ? { includeCaches: true } : {});
  }

  async list(ref: string): Promise<SnapshotInfo[]> {
    const w = await this.workspaces.resolve(ref);
    return this.store.list(w.id);
  }

  /** The latest snapshot (a running workspace gets a fresh one first), then `write` streams it as a tar. */
  async prepareExport(ref: string, progress: ProgressFn = () => undefined): Promise<{ info: SnapshotInfo; write(out: Writable): Promise<void> }> {
    const store = this.store;
    const w = await this.workspaces.resolve(ref);
    const running = await this.workspaces.runningTarget(w.id).catch(() => undefined);
    const info = running ? await store.take(snapshotTarget(w, running), 'export', progress) : await store.latest(w.id);
    if (!info) throw new UserError('not_found', `Workspace ${w.id} has no snapshot to export.`, `Start it (\`claude-vm workspace up ${w.id}\`) and export again.`);
    const parts = await store.exportParts(w.id, info.id);
    return { info, write: (out) => writeExport(out, parts.manifest, parts.packIds, parts.pack) };
  }

  /** A new workspace on `provider`, filled from an exported tar (seed 003's backup and restore). */
  async import(input: Readable, req: Pick<UpRequest, 'provider' | 'name' | 'size'>, progress: ProgressFn = () => undefined): Promise<UpResult> {
    const store = this.store;
    progress({ step: 'Reading', detail: 'the export' });
    const { manifest, packs } = await openExport(input);
    const meta = manifest.info.workspace;
    const project = { name: meta.project, source: `snapshot:${manifest.info.workspaceId}/${manifest.info.id}`, sourceKind: 'empty' as const };
    return this.workspaces.createFrom(project, { ...req, image: meta.image }, meta.branch, async (t) => {
      const info = await store.adopt(t.workspaceId, manifest, packs());
      await store.restore(t, info.id, progress);
    }, progress);
  }
}

export function snapshotTarget(w: WorkspaceRow, t: WorkspaceTarget): SnapshotTarget {
  return {
    provider: t.provider,
    refs: t.refs,
    workspaceId: w.id,
    projectDir: t.projectDir,
    meta: { name: w.name, image: w.image, branch: w.branch, project: posix.basename(t.projectDir) || w.project.name, size: w.size },
  };
}
