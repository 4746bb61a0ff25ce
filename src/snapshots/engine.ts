/**
 * @module The control plane's half of snapshots. The agent inside the workspace sends new chunks; they are packed
 * into objects of ~16 MB (a store holds a few thousand objects for a large workspace, not one per small file) and the
 * manifest is written last, then a one-line summary: a snapshot exists once its summary does, so a crash at any
 * point before leaves the previous snapshot as the latest, and the orphaned packs are collected later.
 *
 * Store layout, per workspace: packs/<random id>, manifests/<snapshot id>.json, snapshots/<snapshot id>.json.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import type { ProgressFn, SnapshotInfo, SnapshotReason } from '../protocol/types.js';
import type { Provider, ResourceRefs } from '../providers/provider.js';
import { FRAME, chunkHead, frame, parseChunk, readFrames, zstdFallbackPrelude, type CreateHeader, type FileEntry, type SnapshotTotals } from './agent.js';
import type { ObjectStore } from './store.js';

const PACK_SIZE = 16 << 20;
/** Never in a snapshot: credentials and the workspace's tunnel token. */
export const SECRET_PATHS = ['.claude-vm/tunnel.json', '.home/.claude/.credentials.json', '.home/.codex/auth.json', '.home/.gemini/oauth_creds.json', '.home/.qwen/oauth_creds.json', '.home/.local/share/opencode/auth.json'];
/** Rebuilt on demand, so left out unless asked for: package caches, installed agents, editor servers. */
export const CACHE_PATHS = ['.home/.cache', '.home/.npm', '.claude-vm/agents', '.home/.vscode-server', '.home/.cursor-server'];
/** claude-vm's own moving parts: reinstalled by every `up`. */
const RUNTIME_PATHS = ['.claude-vm/daemon', '.claude-vm/daemon.sock', '.claude-vm/supervisor.lock', '.claude-vm/restoring'];
export const DEFAULT_EXCLUDE = ['node_modules'];

/** Where a chunk is: pack, offset, length, codec. */
type Location = [string, number, number, number];

export interface Manifest {
  version: 1;
  info: SnapshotInfo;
  /** The workspace root the paths are relative to. */
  root: string;
  entries: FileEntry[];
  chunks: Record<string, Location>;
}

/** A running workspace, seen from outside: everything the agent is run through. */
export interface SnapshotTarget {
  provider: Provider;
  refs: ResourceRefs;
  workspaceId: string;
  projectDir: string;
  /** Copied into the snapshot so `import` can rebuild the workspace record. */
  meta: SnapshotInfo['workspace'];
}

export interface SnapshotOptions {
  /** Snapshots kept per workspace; older ones are deleted after a new one is taken. */
  keep: number;
  exclude: string[];
  includeCaches: boolean;
}

let agentSource: string | undefined;
let restoreSource: string | undefined;
/** The script sent into the workspace; a restore's carries a zstd decoder for a Node that has none (see agent.ts). */
function agentCode(mode: 'create' | 'restore'): string {
  agentSource ??= readFileSync(new URL('./agent.js', import.meta.url), 'utf8');
  if (mode === 'create') return agentSource;
  return (restoreSource ??= zstdFallbackPrelude(readFileSync(createRequire(import.meta.url).resolve('fzstd'), 'utf8')) + agentSource);
}

export class SnapshotStore {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Packs each manifest uses, by `workspace/snapshot`: manifests never change, so each is read once per process. */
  private readonly packsUsed = new Map<string, string[]>();

  constructor(
    readonly objects: ObjectStore,
    private readonly options: SnapshotOptions,
  ) {}

  /** One snapshot operation per workspace at a time in this process (and across processes, under `lock`). */
  private serial<T>(workspaceId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(workspaceId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.locks.set(workspaceId, next);
    void next.catch(() => undefined).then(() => this.locks.get(workspaceId) === next && this.locks.delete(workspaceId));
    return next;
  }

  async list(workspaceId: string): Promise<SnapshotInfo[]> {
    const keys = await this.objects.list(`${workspaceId}/snapshots/`);
    const infos = await Promise.all(keys.map((k) => this.readSealed<SnapshotInfo>(k).catch(() => undefined)));
    return infos.filter((i): i is SnapshotInfo => !!i).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async latest(workspaceId: string): Promise<SnapshotInfo | undefined> {
    return (await this.list(workspaceId)).at(-1);
  }

  async manifest(workspaceId: string, id: string): Promise<Manifest> {
    return this.readSealed<Manifest>(`${workspaceId}/manifests/${id}.json`);
  }

  take(t: SnapshotTarget, reason: SnapshotReason, progress: ProgressFn = () => undefined, opts: Partial<SnapshotOptions> = {}): Promise<SnapshotInfo> {
    return this.serial(t.workspaceId, () => this.takeNow(t, reason, progress, { ...this.options, ...opts }));
  }

  private async takeNow(t: SnapshotTarget, reason: SnapshotReason, progress: ProgressFn, opts: SnapshotOptions): Promise<SnapshotInfo> {
    const started = Date.now();
    const root = t.provider.workspaceRoot(t.refs);
    const last = await this.latest(t.workspaceId);
    const previous = last ? await this.manifest(t.workspaceId, last.id).catch(() => undefined) : undefined;
    const known = new Map<string, Location>(Object.entries(previous?.chunks ?? {}));
    const exclude = [...(opts.exclude.length ? opts.exclude : DEFAULT_EXCLUDE), ...RUNTIME_PATHS.map(anchor), ...SECRET_PATHS.map(anchor), ...(opts.includeCaches ? [] : CACHE_PATHS.map(anchor))];
    const header: CreateHeader = { root, project: relativeTo(root, t.projectDir), exclude, previous: previous?.entries ?? [] };

    progress({ step: 'Snapshotting', detail: previous ? `changes since ${last!.id}` : 'everything (first snapshot)' });
    const agent = await this.runAgent(t, 'create');
    agent.stdin.end(Buffer.concat(frame(FRAME.header, JSON.stringify(header))));
    const packer = new PackWriter(this.objects, t.workspaceId);
    const entries: FileEntry[] = [];
    const warnings: string[] = [];
    let totals: SnapshotTotals | undefined;
    try {
      for await (const f of readFrames(agent.stdout)) {
        if (f.type === FRAME.chunk) {
          const c = parseChunk(f.payload);
          if (!known.has(c.hash) && !packer.has(c.hash)) await packer.add(c.hash, c.codec, c.data);
        } else if (f.type === FRAME.file) entries.push(JSON.parse(f.payload.toString()) as FileEntry);
        else if (f.type === FRAME.progress) {
          const p = JSON.parse(f.payload.toString()) as SnapshotTotals;
          progress({ step: 'Snapshotting', detail: `${p.files} files, ${mb(p.bytes)} read, ${mb(p.newBytes)} new` });
        } else if (f.type === FRAME.warning) warnings.push(JSON.parse(f.payload.toString()).path as string);
        else if (f.type === FRAME.end) totals = JSON.parse(f.payload.toString()) as SnapshotTotals;
      }
      const code = await agent.exit;
      if (code !== 0 || !totals) throw new UserError('wrong_state', `The snapshot of ${t.workspaceId} failed inside the workspace: ${agent.errors().trim() || `exit ${code}`}.`);
      await packer.finish();
      progress({ step: 'Saved', detail: `${mb(packer.bytes)} new in ${packer.count} object(s) to ${this.objects.description}` });
    } catch (e) {
      agent.kill();
      await packer.settle();
      throw e;
    }
    const chunks: Record<string, Location> = {};
    for (const e of entries) {
      for (const h of e.c ?? []) {
        const at = packer.locations.get(h) ?? known.get(h);
        if (!at) throw new Error(`snapshot of ${t.workspaceId}: chunk ${h} of ${e.p} was never sent`);
        chunks[h] = at;
      }
    }
    const info: SnapshotInfo = {
      id: snapshotId(),
      workspaceId: t.workspaceId,
      createdAt: new Date().toISOString(),
      reason,
      files: totals.files,
      bytes: totals.bytes,
      newBytes: totals.newBytes,
      storedBytes: packer.bytes,
      skipped: warnings.slice(0, 20),
      durationMs: Date.now() - started,
      projectDir: t.projectDir,
      workspace: t.meta,
    };
    // Manifest first, summary last: the summary is what makes the snapshot exist.
    const manifest: Manifest = { version: 1, info, root, entries, chunks };
    await this.writeSealed(`${t.workspaceId}/manifests/${info.id}.json`, manifest);
    this.packsUsed.set(`${t.workspaceId}/${info.id}`, packIds(manifest));
    await this.writeSealed(`${t.workspaceId}/snapshots/${info.id}.json`, info);
    await this.prune(t.workspaceId).catch(() => undefined);
    return info;
  }

  /**
   * Writes a snapshot into a workspace whose volume is empty (fresh container, other host, other provider). Every
   * chunk is checked against its hash inside the workspace before it is written.
   */
  async restore(t: Omit<SnapshotTarget, 'meta'>, id: string, progress: ProgressFn = () => undefined): Promise<{ files: number; bytes: number }> {
    const m = await this.manifest(t.workspaceId, id);
    const root = t.provider.workspaceRoot(t.refs);
    const packs = new PackReader(this.objects, t.workspaceId, m);
    const agent = await this.runAgent(t, 'restore');
    let exited: number | undefined;
    void agent.exit.then((code) => (exited = code));
    const failed = (code: number) => new UserError('wrong_state', `Restoring snapshot ${id} failed inside the workspace: ${agent.errors().trim() || `exit ${code}`}.`);
    const send = async (type: number, ...payload: Buffer[]) => {
      // The frame goes out in pieces (a chunk's bytes are never copied out of their pack here). The agent stops
      // reading when it finds a damaged chunk: its exit, not a drain, ends the wait then.
      let full = false;
      for (const part of frame(type, ...payload)) full = !agent.stdin.write(part) || full;
      if (full) await Promise.race([new Promise((r) => agent.stdin.once('drain', r)), agent.exit]);
      if (exited !== undefined) throw failed(exited);
    };
    let out = '';
    agent.stdout.on('data', (d: Buffer) => (out += d));
    let sent = 0;
    let lastReport = 0;
    try {
      await send(FRAME.header, Buffer.from(JSON.stringify({ root })));
      for (const e of m.entries) {
        await send(FRAME.file, Buffer.from(JSON.stringify(e)));
        for (const h of e.c ?? []) {
          const at = m.chunks[h];
          if (!at) throw new UserError('wrong_state', `Snapshot ${id} is damaged: it lists no place for a chunk of ${e.p}.`);
          const pack = await packs.get(at[0]);
          await send(FRAME.chunk, chunkHead(h, at[3]), pack.subarray(at[1], at[1] + at[2]));
        }
        sent += e.t === 'f' ? e.s : 0;
        if (Date.now() - lastReport > 500) {
          lastReport = Date.now();
          progress({ step: 'Restoring', detail: `${mb(sent)} of ${mb(m.info.bytes)}` });
        }
      }
      await send(FRAME.end);
      agent.stdin.end();
    } catch (e) {
      agent.kill();
      throw e;
    }
    const code = await agent.exit;
    if (code !== 0) throw failed(code);
    return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { files: number; bytes: number };
  }

  /** Everything the store holds of a workspace goes (`delete --purge`). */
  async purge(workspaceId: string): Promise<void> {
    await this.serial(workspaceId, async () => {
      const keys = await this.objects.list(`${workspaceId}/`);
      // Summaries first: from the first deletion on, no half-deleted snapshot is listed.
      await this.objects.delete(keys.filter((k) => k.includes('/snapshots/')));
      await this.objects.delete(keys.filter((k) => !k.includes('/snapshots/')));
      for (const key of this.packsUsed.keys()) if (key.startsWith(`${workspaceId}/`)) this.packsUsed.delete(key);
    });
  }

  /** Keeps the newest `keep` snapshots and deletes packs no kept manifest refers to (including a crashed run's). */
  private async prune(workspaceId: string): Promise<void> {
    const all = await this.list(workspaceId);
    const drop = all.slice(0, Math.max(0, all.length - this.options.keep));
    await this.objects.delete(drop.map((s) => `${workspaceId}/snapshots/${s.id}.json`));
    await this.objects.delete(drop.map((s) => `${workspaceId}/manifests/${s.id}.json`));
    for (const s of drop) this.packsUsed.delete(`${workspaceId}/${s.id}`);
    const kept = new Set(all.slice(drop.length).map((s) => s.id));
    const manifests = await this.objects.list(`${workspaceId}/manifests/`);
    const orphans = manifests.filter((k) => !kept.has(k.slice(k.lastIndexOf('/') + 1, -'.json'.length)));
    await this.objects.delete(orphans);
    const used = new Set<string>();
    for (const id of kept) for (const pack of await this.packsOf(workspaceId, id)) used.add(pack);
    const packs = await this.objects.list(`${workspaceId}/packs/`);
    await this.objects.delete(packs.filter((k) => !used.has(k.slice(k.lastIndexOf('/') + 1))));
  }

  private async packsOf(workspaceId: string, id: string): Promise<string[]> {
    const key = `${workspaceId}/${id}`;
    let packs = this.packsUsed.get(key);
    if (!packs) this.packsUsed.set(key, (packs = packIds(await this.manifest(workspaceId, id))));
    return packs;
  }

  /** Stores an imported snapshot under a (new) workspace id: packs as they arrive, then the manifest, then the summary. */
  async adopt(workspaceId: string, m: Manifest, packs: AsyncIterable<{ id: string; body: Buffer }>): Promise<SnapshotInfo> {
    const info: SnapshotInfo = { ...m.info, workspaceId };
    for await (const p of packs) await this.objects.put(`${workspaceId}/packs/${p.id}`, p.body);
    await this.writeSealed(`${workspaceId}/manifests/${info.id}.json`, { ...m, info });
    await this.writeSealed(`${workspaceId}/snapshots/${info.id}.json`, info);
    return info;
  }

  /** What an export holds: the manifest object as stored, and its packs fetched one at a time. */
  async exportParts(workspaceId: string, id: string): Promise<{ manifest: Buffer; packIds: string[]; pack: (id: string) => Promise<Buffer> }> {
    const manifest = await this.objects.get(`${workspaceId}/manifests/${id}.json`);
    const m = unseal<Manifest>(manifest, id);
    return { manifest, packIds: packIds(m), pack: (p) => this.objects.get(`${workspaceId}/packs/${p}`) };
  }

  /** Objects carry their own sha256 so a flipped bit in an unencrypted store is caught, not restored. */
  private async writeSealed(key: string, value: unknown): Promise<void> {
    const body = JSON.stringify(value);
    await this.objects.put(key, Buffer.from(`${sha256(body)}\n${body}`));
  }

  private async readSealed<T>(key: string): Promise<T> {
    return unseal<T>(await this.objects.get(key), key);
  }

  private async runAgent(t: Omit<SnapshotTarget, 'meta'>, mode: 'create' | 'restore') {
    const stdin = new PassThrough({ highWaterMark: 4 << 20 }); // a few chunks in flight towards the agent
    const stdout = new PassThrough({ highWaterMark: 1 << 20 });
    let errors = '';
    const stderr = new PassThrough();
    stderr.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-4000)));
    const h = await t.provider.exec(t.refs, {
      argv: ['node', '--input-type=module', '-e', agentCode(mode)],
      env: { CLAUDE_VM_SNAPSHOT_AGENT: mode },
      stdin,
      stdout,
      stderr,
    });
    const exit = h.exit.then((code) => (stdout.end(), code), (e: Error) => (stdout.destroy(e), -1));
    return { stdin, stdout, exit, errors: () => errors, kill: () => (stdin.destroy(), stdout.destroy()) };
  }
}

export function unseal<T>(raw: Buffer, key: string): T {
  const text = raw.toString('utf8');
  const nl = text.indexOf('\n');
  const body = text.slice(nl + 1);
  if (nl !== 64 || sha256(body) !== text.slice(0, 64)) throw new UserError('wrong_state', `Snapshot object ${key} is damaged (its checksum does not match).`);
  return JSON.parse(body) as T;
}

/** Collects chunks into packs and uploads each once full, two at a time at most (memory stays bounded). */
class PackWriter {
  readonly locations = new Map<string, Location>();
  private parts: Buffer[] = [];
  private pending = new Map<string, [number, number, number]>();
  private size = 0;
  private uploads: Array<Promise<void>> = [];
  bytes = 0;
  count = 0;

  constructor(private readonly store: ObjectStore, private readonly workspaceId: string) {}

  has(hash: string): boolean {
    return this.pending.has(hash) || this.locations.has(hash);
  }

  async add(hash: string, codec: number, data: Buffer): Promise<void> {
    this.pending.set(hash, [this.size, data.length, codec]);
    this.parts.push(Buffer.from(data)); // copy: the frame's buffer is reused by the reader
    this.size += data.length;
    if (this.size >= PACK_SIZE) await this.cut();
  }

  private async cut(): Promise<void> {
    if (!this.parts.length) return;
    const id = randomBytes(12).toString('hex');
    const body = Buffer.concat(this.parts);
    for (const [hash, [off, len, codec]] of this.pending) this.locations.set(hash, [id, off, len, codec]);
    this.parts = [];
    this.pending = new Map();
    this.size = 0;
    this.bytes += body.length;
    this.count++;
    this.uploads.push(this.store.put(`${this.workspaceId}/packs/${id}`, body));
    if (this.uploads.length >= 2) await this.uploads.shift();
  }

  async finish(): Promise<void> {
    await this.cut();
    await Promise.all(this.uploads);
  }

  /** After a failure: let uploads end (their packs are collected by the next prune). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.uploads);
  }
}

/** Fetches packs in the order a restore needs them, one ahead, and keeps the last few (dedup reaches back). */
class PackReader {
  private readonly cache = new Map<string, Promise<Buffer>>();
  private readonly order: string[];
  private at = 0;

  constructor(private readonly store: ObjectStore, private readonly workspaceId: string, m: Manifest) {
    const seen = new Set<string>();
    this.order = [];
    for (const e of m.entries) for (const h of e.c ?? []) {
      const p = m.chunks[h]?.[0];
      if (p && !seen.has(p)) (seen.add(p), this.order.push(p));
    }
  }

  get(id: string): Promise<Buffer> {
    const i = this.order.indexOf(id, this.at);
    if (i >= 0) {
      this.at = i;
      void this.load(this.order[i + 1]).catch(() => undefined);
    }
    return this.load(id);
  }

  private load(id: string | undefined): Promise<Buffer> {
    if (!id) return Promise.resolve(Buffer.alloc(0));
    let p = this.cache.get(id);
    if (!p) {
      p = this.store.get(`${this.workspaceId}/packs/${id}`);
      this.cache.set(id, p);
      if (this.cache.size > 6) this.cache.delete(this.cache.keys().next().value!);
    } else {
      this.cache.delete(id);
      this.cache.set(id, p);
    }
    return p;
  }
}

function snapshotId(): string {
  return `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(2).toString('hex')}`;
}

/** The packs a manifest's chunks live in. */
const packIds = (m: Manifest): string[] => [...new Set(Object.values(m.chunks).map((at) => at[0]))];
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const anchor = (p: string) => `/${p}`;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function relativeTo(root: string, dir: string): string {
  return dir.startsWith(root + '/') ? dir.slice(root.length + 1) : '';
}
