/**
 * @module The half of a snapshot that runs inside the workspace, next to the files: it walks the volume, hashes and
 * compresses only what changed since the previous snapshot, and streams it out as frames on stdout; on restore it
 * reads frames on stdin, checks every chunk against its hash, and writes the files back.
 *
 * Self-contained (node builtins only): it is sent as source text (`node --input-type=module -e`) to workspaces that
 * may hold nothing of claude-vm, e.g. a fresh volume being restored. The control plane imports the frame codec.
 */
import { createHash } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zlib } from 'node:zlib';
import type { Readable, Writable } from 'node:stream';

/** Files are cut into pieces of this size; a piece is the unit of deduplication. */
export const CHUNK_SIZE = 1 << 20;
export const FRAME = { header: 1, chunk: 2, file: 3, progress: 4, warning: 5, end: 6 } as const;
export const CODEC = { raw: 0, brotli: 1 } as const;

/** One path in a snapshot, relative to the workspace root. Short keys: a manifest can list 100,000 of them. */
export interface FileEntry {
  p: string;
  /** file, directory or symbolic link */
  t: 'f' | 'd' | 'l';
  m: number;
  mt: number;
  s: number;
  /** The file's chunk hashes, in order. */
  c?: string[];
  /** A link's target. */
  l?: string;
  /** Inode, with size and mtime the test for "unchanged since the previous snapshot". */
  i?: number;
}

export interface CreateHeader {
  root: string;
  /** The project directory, relative to root: its `.claudevmignore` applies below it. */
  project: string;
  exclude: string[];
  /** The previous snapshot's entries: unchanged files are not read again. */
  previous: FileEntry[];
}

export interface SnapshotTotals {
  files: number;
  bytes: number;
  /** Bytes in chunks the store did not have yet. */
  newBytes: number;
  skipped: number;
}

// --- frames: [type u8][length u32 BE][payload] ------------------------------------------------------------------

export function frame(type: number, payload: Buffer | string): Buffer[] {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.allocUnsafe(5);
  head[0] = type;
  head.writeUInt32BE(body.length, 1);
  return [head, body];
}

export function chunkPayload(hash: string, codec: number, data: Buffer): Buffer {
  const head = Buffer.allocUnsafe(33);
  head.write(hash, 0, 32, 'hex');
  head[32] = codec;
  return Buffer.concat([head, data]);
}

export function parseChunk(payload: Buffer): { hash: string; codec: number; data: Buffer } {
  return { hash: payload.subarray(0, 32).toString('hex'), codec: payload[32]!, data: payload.subarray(33) };
}

export async function* readFrames(stream: Readable): AsyncGenerator<{ type: number; payload: Buffer }> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const data of stream as AsyncIterable<Buffer>) {
    pending = pending.length ? Buffer.concat([pending, data]) : data;
    let at = 0;
    while (pending.length - at >= 5) {
      const len = pending.readUInt32BE(at + 1);
      if (pending.length - at - 5 < len) break;
      yield { type: pending[at]!, payload: pending.subarray(at + 5, at + 5 + len) };
      at += 5 + len;
    }
    pending = pending.subarray(at);
  }
  if (pending.length) throw new Error('the stream ended inside a frame');
}

/** Writes frames in order and waits while the reader is behind (bounded memory for any size of workspace). */
class FrameWriter {
  constructor(private readonly out: Writable) {}
  async write(type: number, payload: Buffer | string): Promise<void> {
    const [head, body] = frame(type, payload);
    this.out.write(head!);
    if (!this.out.write(body!)) await new Promise((r) => this.out.once('drain', r));
  }
}

// --- what is left out ---------------------------------------------------------------------------------------------

/** gitignore-like: `name` matches at any depth, `dir/name` from the base, `*` `?` `**` globs, `!` re-includes. */
export function ignoreRules(patterns: string[], base: string): (rel: string) => boolean | undefined {
  const rules = patterns
    .map((raw) => raw.trim())
    .filter((p) => p && !p.startsWith('#'))
    .map((p) => {
      const negate = p.startsWith('!');
      const body = (negate ? p.slice(1) : p).replace(/\/+$/, '');
      const anchored = body.includes('/');
      const glob = body.replace(/^\//, '');
      const re = new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*') + '$');
      return { negate, anchored, re };
    });
  return (rel) => {
    if (base && rel !== base && !rel.startsWith(base + '/')) return undefined;
    const sub = base ? rel.slice(base.length + 1) : rel;
    let verdict: boolean | undefined;
    for (const r of rules) if (r.re.test(r.anchored ? sub : posix.basename(sub))) verdict = !r.negate;
    return verdict;
  };
}

// --- create ---------------------------------------------------------------------------------------------------------

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);
const BROTLI = { params: { [zlib.BROTLI_PARAM_QUALITY]: 1, [zlib.BROTLI_PARAM_SIZE_HINT]: CHUNK_SIZE } };

/** At most `n` tasks at once; compression runs on libuv's thread pool, so this is real parallelism. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Up to CHUNK_SIZE bytes at `pos`, sized for what the file is expected to hold (most files are small). */
async function readChunk(fh: fs.FileHandle, pos: number, expected: number): Promise<Buffer> {
  let buf = Buffer.allocUnsafe(Math.min(CHUNK_SIZE, Math.max(expected, 0) + 1));
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n === CHUNK_SIZE) break;
      const grown = Buffer.allocUnsafe(CHUNK_SIZE); // the file grew while we read it
      buf.copy(grown);
      buf = grown;
    }
    const { bytesRead } = await fh.read(buf, n, buf.length - n, pos + n);
    if (!bytesRead) break;
    n += bytesRead;
  }
  return buf.subarray(0, n);
}

export async function createSnapshot(h: CreateHeader, out: Writable): Promise<SnapshotTotals> {
  const w = new FrameWriter(out);
  const previous = new Map(h.previous.map((e) => [e.p, e]));
  const known = new Set(h.previous.flatMap((e) => e.c ?? []));
  const projectIgnore = await fs.readFile(posix.join(h.root, h.project, '.claudevmignore'), 'utf8').then((t) => t.split('\n'), () => []);
  const rules = [ignoreRules(h.exclude, ''), ignoreRules(projectIgnore, h.project)];
  const excluded = (rel: string) => rules.reduce<boolean>((ex, r) => r(rel) ?? ex, false);
  const totals: SnapshotTotals = { files: 0, bytes: 0, newBytes: 0, skipped: 0 };
  const compressing = limiter(4);
  const reading = limiter(8);
  let lastProgress = Date.now();

  const progress = async () => {
    if (Date.now() - lastProgress < 250) return;
    lastProgress = Date.now();
    await w.write(FRAME.progress, JSON.stringify(totals));
  };
  const warn = (path: string, message: string) => {
    totals.skipped++;
    return w.write(FRAME.warning, JSON.stringify({ path, message }));
  };

  /** Reads a file whole; if it changed while being read, reads it again (a torn copy is worse than a late one). */
  const snapshotFile = async (rel: string, st: Stats): Promise<FileEntry | undefined> => {
    const before = previous.get(rel);
    const base = { p: rel, t: 'f' as const, m: st.mode & 0o7777, i: st.ino };
    if (before?.t === 'f' && before.s === st.size && before.mt === st.mtimeMs && before.i === st.ino && before.c?.every((c) => known.has(c))) {
      totals.files++;
      totals.bytes += st.size;
      return { ...base, mt: st.mtimeMs, s: st.size, c: before.c };
    }
    for (let attempt = 1; ; attempt++) {
      const fh = await fs.open(posix.join(h.root, rel), 'r');
      try {
        const start = await fh.stat();
        const chunks: string[] = [];
        const sent: Array<Promise<void>> = [];
        let size = 0;
        for (;;) {
          const data = await readChunk(fh, size, start.size - size);
          const n = data.length;
          if (!n && size) break;
          const hash = createHash('sha256').update(data).digest('hex');
          chunks.push(hash);
          size += n;
          if (!known.has(hash)) {
            known.add(hash);
            totals.newBytes += n;
            sent.push(compressing(async () => {
              const packed = n > 64 ? await compress(data, BROTLI) : data;
              // Already-compressed data (images, archives, git packs) is stored as it is.
              const [codec, body] = packed.length < n * 0.95 ? [CODEC.brotli, packed] : [CODEC.raw, data];
              await w.write(FRAME.chunk, chunkPayload(hash, codec, body));
            }));
          }
          if (n < CHUNK_SIZE) break;
        }
        await Promise.all(sent);
        const end = await fh.stat();
        if ((end.mtimeMs !== start.mtimeMs || end.size !== size) && attempt < 3) continue;
        totals.files++;
        totals.bytes += size;
        return { ...base, mt: start.mtimeMs, s: size, c: chunks };
      } finally {
        await fh.close();
      }
    }
  };

  const inFlight = new Set<Promise<void>>();
  const walk = async (dirRel: string): Promise<void> => {
    let names: string[];
    try {
      names = (await fs.readdir(posix.join(h.root, dirRel))).sort();
    } catch (e) {
      return warn(dirRel || '.', (e as Error).message);
    }
    const subdirs: string[] = [];
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (excluded(rel)) continue;
      const st = await fs.lstat(posix.join(h.root, rel)).catch(() => undefined);
      if (!st) continue; // removed while we walked
      if (st.isDirectory()) {
        await w.write(FRAME.file, JSON.stringify({ p: rel, t: 'd', m: st.mode & 0o7777, mt: st.mtimeMs, s: 0 } satisfies FileEntry));
        subdirs.push(rel);
      } else if (st.isSymbolicLink()) {
        const target = await fs.readlink(posix.join(h.root, rel));
        await w.write(FRAME.file, JSON.stringify({ p: rel, t: 'l', m: 0o777, mt: st.mtimeMs, s: 0, l: target } satisfies FileEntry));
      } else if (st.isFile()) {
        const job = reading(() => snapshotFile(rel, st))
          .then((entry) => entry && w.write(FRAME.file, JSON.stringify(entry)))
          .catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : warn(rel, e.message)))
          .then(progress);
        inFlight.add(job);
        void job.finally(() => inFlight.delete(job));
        if (inFlight.size >= 16) await Promise.race(inFlight);
      }
      // Sockets, FIFOs and devices are not data.
    }
    for (const d of subdirs) await walk(d);
  };
  await walk('');
  await Promise.all(inFlight);
  await w.write(FRAME.end, JSON.stringify(totals));
  return totals;
}

// --- restore --------------------------------------------------------------------------------------------------------

/** Present while a restore runs: a volume holding it is half-restored, not restored (see the control plane's probe). */
export const RESTORING_MARKER = '.claude-vm/restoring';

/** A path from a manifest must stay inside the root: no absolute paths, no `..`. */
function safeJoin(root: string, rel: string): string {
  if (!rel || rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '' || s === '.')) throw new Error(`refusing path "${rel}" in the snapshot`);
  return posix.join(root, rel);
}

export async function restoreSnapshot(input: Readable, out: Writable): Promise<{ files: number; bytes: number }> {
  const frames = readFrames(input);
  const next = async () => {
    const r = await frames.next();
    if (r.done) throw new Error('the snapshot stream ended early');
    return r.value;
  };
  const first = await next();
  if (first.type !== FRAME.header) throw new Error('the snapshot stream has no header');
  const { root } = JSON.parse(first.payload.toString()) as { root: string };
  const marker = posix.join(root, RESTORING_MARKER);
  await fs.mkdir(posix.dirname(marker), { recursive: true });
  await fs.writeFile(marker, '');
  const dirs: FileEntry[] = [];
  const links: FileEntry[] = [];
  let files = 0;
  let bytes = 0;
  for (;;) {
    const f = await next();
    if (f.type === FRAME.end) break;
    if (f.type !== FRAME.file) throw new Error(`unexpected frame ${f.type} in the snapshot stream`);
    const e = JSON.parse(f.payload.toString()) as FileEntry;
    const path = safeJoin(root, e.p);
    if (e.t === 'd') {
      await fs.mkdir(path, { recursive: true });
      dirs.push(e);
    } else if (e.t === 'l') {
      links.push(e);
    } else {
      await fs.mkdir(posix.dirname(path), { recursive: true });
      const tmp = `${path}.claude-vm-restore`;
      const fh = await fs.open(tmp, 'w', 0o600);
      try {
        for (const expected of e.c ?? []) {
          const c = parseChunk((await next()).payload);
          const data = c.codec === CODEC.brotli ? await decompress(c.data) : c.data;
          if (c.hash !== expected || createHash('sha256').update(data).digest('hex') !== expected) {
            throw new Error(`checksum mismatch in ${e.p}: the snapshot is damaged`);
          }
          await fh.write(data);
          bytes += data.length;
        }
      } finally {
        await fh.close();
      }
      await fs.chmod(tmp, e.m);
      await fs.utimes(tmp, new Date(), new Date(e.mt));
      await fs.rename(tmp, path);
      files++;
    }
  }
  // Links last, so no file above was written through a link the snapshot made; directory times last of all.
  for (const e of links) {
    const path = safeJoin(root, e.p);
    await fs.rm(path, { force: true, recursive: false }).catch(() => undefined);
    await fs.symlink(e.l!, path);
  }
  for (const e of dirs.reverse()) {
    const path = safeJoin(root, e.p);
    await fs.chmod(path, e.m).catch(() => undefined);
    await fs.utimes(path, new Date(), new Date(e.mt)).catch(() => undefined);
  }
  await fs.rm(marker, { force: true });
  out.write(JSON.stringify({ files, bytes }) + '\n');
  return { files, bytes };
}

// --- entry point, when sent into a workspace --------------------------------------------------------------------

async function main(mode: string): Promise<void> {
  if (mode === 'restore') {
    await restoreSnapshot(process.stdin, process.stdout);
    return;
  }
  const frames = readFrames(process.stdin);
  const first = (await frames.next()).value;
  if (!first || first.type !== FRAME.header) throw new Error('no snapshot header on stdin');
  await createSnapshot(JSON.parse(first.payload.toString()) as CreateHeader, process.stdout);
}

const mode = process.env.CLAUDE_VM_SNAPSHOT_AGENT;
if (mode) {
  main(mode).then(
    () => process.stdout.end(),
    (e: Error) => {
      process.stderr.write(`claude-vm snapshot: ${e.message}\n`);
      process.exit(3);
    },
  );
}
