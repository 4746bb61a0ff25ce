/**
 * @module The half of a snapshot that runs inside the workspace, next to the files: it walks the volume, hashes and
 * compresses only what changed since the previous snapshot, and streams it out as frames on stdout; on restore it
 * reads frames on stdin, checks every chunk against its hash, and writes the files back.
 *
 * Self-contained (node builtins only): it is sent as source text (`node --input-type=module -e`) to workspaces that
 * may hold nothing of claude-vm, e.g. a fresh volume being restored. The control plane imports the frame codec.
 */
import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, futimesSync, lstatSync, openSync, rmSync, promises as fs, readdirSync, readFileSync, writeSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import type { Readable, Writable } from 'node:stream';

/** Files are cut into pieces of this size; a piece is the unit of deduplication. */
export const CHUNK_SIZE = 1 << 20;
export const FRAME = { header: 1, chunk: 2, file: 3, progress: 4, warning: 5, end: 6 } as const;
export const CODEC = { raw: 0, brotli: 1, zstd: 2 } as const;

/** One path in a snapshot, relative to the workspace root. Short keys: a manifest can list 100,000 of them. */
export interface FileEntry {
  p: string;
  /** file, directory, symbolic link, or hard link to an earlier entry */
  t: 'f' | 'd' | 'l' | 'h';
  m: number;
  mt: number;
  s: number;
  /** The file's chunk hashes, in order. */
  c?: string[];
  /** A symbolic link's target, or the path of the file a hard link shares its data with. */
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

/** A frame as pieces, its payload's parts uncopied: the header, then each part. */
export function frame(type: number, ...payload: Array<Buffer | string>): Buffer[] {
  const bodies = payload.map((p) => (typeof p === 'string' ? Buffer.from(p) : p));
  const head = Buffer.allocUnsafe(5);
  head[0] = type;
  head.writeUInt32BE(bodies.reduce((n, b) => n + b.length, 0), 1);
  return [head, ...bodies];
}

/** What precedes a chunk's bytes in its frame: the hash and the codec. */
export function chunkHead(hash: string, codec: number): Buffer {
  const head = Buffer.allocUnsafe(33);
  head.write(hash, 0, 32, 'hex');
  head[32] = codec;
  return head;
}

export function chunkPayload(hash: string, codec: number, data: Buffer): Buffer {
  return Buffer.concat([chunkHead(hash, codec), data]);
}

export function parseChunk(payload: Buffer): { hash: string; codec: number; data: Buffer } {
  return { hash: payload.subarray(0, 32).toString('hex'), codec: payload[32]!, data: payload.subarray(33) };
}

export async function* readFrames(stream: Readable): AsyncGenerator<{ type: number; payload: Buffer }> {
  // Pieces are kept until a whole frame is there, then joined once: a 1 MiB frame arriving in 64 KiB reads is
  // copied once, not sixteen times.
  let parts: Buffer[] = [];
  let total = 0;
  for await (const data of stream as AsyncIterable<Buffer>) {
    parts.push(data);
    total += data.length;
    while (total >= 5) {
      if (parts[0]!.length < 5) parts = [Buffer.concat(parts, total)];
      const len = parts[0]!.readUInt32BE(1);
      if (total < 5 + len) break;
      const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
      yield { type: all[0]!, payload: all.subarray(5, 5 + len) };
      const rest = all.subarray(5 + len);
      parts = rest.length ? [rest] : [];
      total = rest.length;
    }
  }
  if (total) throw new Error('the stream ended inside a frame');
}

/** Writes frames in order and waits while the reader is behind (bounded memory for any size of workspace). */
class FrameWriter {
  /** One wait for 'drain' shared by every writer that finds the stream full. */
  private drained: Promise<void> | undefined;
  constructor(private readonly out: Writable) {}
  async write(type: number, payload: Buffer | string): Promise<void> {
    const [head, body] = frame(type, payload);
    this.out.write(head!);
    if (this.out.write(body!)) return;
    this.drained ??= new Promise<void>((r) => this.out.once('drain', () => ((this.drained = undefined), r())));
    await this.drained;
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

/** Below this, (de)compression runs inline: cheaper than a trip to the thread pool. */
const SMALL = 64 << 10;

type Convert = (data: Buffer, options?: object) => Buffer;
type ConvertAsync = (data: Buffer, options: object, done: (e: Error | null, out: Buffer) => void) => void;
/** zlib's zstd (Node 22.15 and later; the workspace image has it). @types/node 20 does not know it yet. */
const zstd = (zlib as unknown as { zstdCompressSync?: Convert }).zstdCompressSync
  ? (zlib as unknown as Record<'zstdCompressSync' | 'zstdDecompressSync', Convert> & Record<'zstdCompress' | 'zstdDecompress', ConvertAsync>)
  : undefined;

/**
 * What new chunks are compressed with: zstd where this Node has it (it decompresses about three times as fast as
 * Brotli, which is what a restore waits for), Brotli otherwise. Level 1 of either: a snapshot is taken often and
 * read rarely, and higher levels cost far more time than they save space on source trees.
 */
const packer = zstd
  ? {
      codec: CODEC.zstd,
      sync: (data: Buffer) => zstd.zstdCompressSync(data, { params: { [ZSTD_LEVEL]: 1 } }),
      async: promisify((data: Buffer, done: (e: Error | null, out: Buffer) => void) => zstd.zstdCompress(data, { params: { [ZSTD_LEVEL]: 1 } }, done)),
    }
  : {
      codec: CODEC.brotli,
      sync: (data: Buffer) => zlib.brotliCompressSync(data, brotliFor(data.length)),
      async: promisify((data: Buffer, done: (e: Error | null, out: Buffer) => void) => zlib.brotliCompress(data, brotliFor(data.length), done)),
    };
function brotliFor(size: number): zlib.BrotliOptions {
  return { chunkSize: Math.max(16 << 10, size), params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size } };
}
/** ZSTD_c_compressionLevel, from zstd.h (zlib.constants has it only where zstd is). */
const ZSTD_LEVEL = 100;
/**
 * Output buffers a little larger than a whole chunk: one trip back from the thread pool per chunk, not one per
 * 16 KiB; and a full buffer is never handed back for a last, empty round (that alone cost a sixth of the time).
 */
const UNPACK = { chunkSize: CHUNK_SIZE + 1024 };
const brotliDecompress = promisify((data: Buffer, done: (e: Error | null, out: Buffer) => void) => zlib.brotliDecompress(data, UNPACK, done));
const zstdDecompress = zstd && promisify((data: Buffer, done: (e: Error | null, out: Buffer) => void) => zstd.zstdDecompress(data, UNPACK, done));

/**
 * Where this Node has no zstd (below 22.15: a host running the local provider, an older image), the control plane
 * puts a JavaScript decoder (fzstd) in front of the restore script as this global: slower, but every snapshot
 * restores everywhere.
 */
const ZSTD_FALLBACK = 'claudeVmZstdDecoder';
interface ZstdFallback {
  decompress(data: Uint8Array): Uint8Array;
}
function zstdFallback(data: Buffer): Buffer {
  const decoder = (globalThis as Record<string, unknown>)[ZSTD_FALLBACK] as ZstdFallback | undefined;
  if (!decoder) throw new Error(`this snapshot is compressed with zstd, which this Node (${process.version}) cannot read`);
  const out = decoder.decompress(data);
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

/** A chunk's bytes as they were in the file, `size` of them. */
function unpack(codec: number, data: Buffer, size: number): Buffer {
  const options = { chunkSize: Math.max(64, size + 64) }; // one output buffer, as UNPACK
  if (codec === CODEC.raw) return data;
  if (codec === CODEC.brotli) return zlib.brotliDecompressSync(data, options);
  if (codec === CODEC.zstd) return zstd ? zstd.zstdDecompressSync(data, options) : zstdFallback(data);
  throw new Error(`unknown chunk codec ${codec}: the snapshot was made by a newer claude-vm`);
}
/** The same on the thread pool, where zlib has the codec. */
async function unpackAsync(codec: number, data: Buffer): Promise<Buffer> {
  if (codec === CODEC.brotli) return brotliDecompress(data);
  if (codec === CODEC.zstd && zstdDecompress) return zstdDecompress(data);
  return unpack(codec, data, CHUNK_SIZE);
}

/** The restore script's prelude that defines the fallback, from fzstd's CommonJS build. */
export function zstdFallbackPrelude(fzstdSource: string): string {
  return `globalThis.${ZSTD_FALLBACK} = (() => { const module = { exports: {} }; const exports = module.exports;\n${fzstdSource}\nreturn module.exports; })();\n`;
}

/** Already-compressed data (images, archives, git packs) is stored as it is. */
const pack = (raw: Buffer, packed: Buffer): [number, Buffer] => (packed.length < raw.length * 0.95 ? [packer.codec, packed] : [CODEC.raw, raw]);

/** At most `n` tasks at once; compression runs on libuv's thread pool, so this is real parallelism. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  const slots = new Slots(n);
  return async (task) => {
    await slots.take();
    try {
      return await task();
    } finally {
      slots.give();
    }
  };
}

/**
 * A counting semaphore whose `start` returns once a task has *started*: the producer (a file being read, a restore
 * stream) waits for a free slot before it reads more, so memory stays bounded however large a file is.
 */
class Slots {
  private readonly waiting: Array<() => void> = [];
  constructor(private free: number) {}

  async take(): Promise<void> {
    if (this.free > 0) return void this.free--;
    await new Promise<void>((r) => this.waiting.push(r));
  }

  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }

  async start(task: () => Promise<void>): Promise<{ done: Promise<void> }> {
    await this.take();
    const done = task().finally(() => this.give());
    done.catch(() => undefined); // observed by the caller through `done`
    return { done };
  }
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
  const compressing = new Slots(4);
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

  /**
   * Hashes a chunk and, if the store has not seen it, compresses and sends it: small ones here (a round trip to the
   * thread pool costs more than compressing them), large ones on the thread pool, four at a time. The frame is
   * written before the file's entry, because the entry is written after every `offer` of its file has resolved.
   */
  const offer = async (data: Buffer, pending: Array<Promise<void>>): Promise<string> => {
    const hash = createHash('sha256').update(data).digest('hex');
    if (known.has(hash)) return hash;
    known.add(hash);
    totals.newBytes += data.length;
    if (data.length < SMALL) {
      await w.write(FRAME.chunk, chunkPayload(hash, ...pack(data, data.length > 64 ? packer.sync(data) : data)));
    } else {
      const job = await compressing.start(async () => {
        // A sample first: media, archives and binaries do not compress, and trying on a whole chunk is the slowest
        // thing a snapshot could do with them.
        const sample = data.subarray(0, SMALL);
        const worth = packer.sync(sample).length < sample.length * 0.9;
        await w.write(FRAME.chunk, chunkPayload(hash, ...(worth ? pack(data, await packer.async(data)) : ([CODEC.raw, data] as [number, Buffer]))));
      });
      pending.push(job.done);
    }
    return hash;
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
    const path = posix.join(h.root, rel);
    if (st.size < CHUNK_SIZE) {
      // Most files are small: one read, checked against the walk's stat and a second one after the read. Blocking
      // calls: for a file in the page cache they cost a fraction of a promise round trip through the thread pool.
      let seen = st;
      for (let attempt = 1; ; attempt++) {
        const data = readFileSync(path);
        const after = lstatSync(path);
        if ((after.mtimeMs !== seen.mtimeMs || after.size !== data.length) && attempt < 3) {
          seen = after;
          continue;
        }
        const pending: Array<Promise<void>> = [];
        const hash = await offer(data, pending);
        await Promise.all(pending); // its chunk is out before its entry

        totals.files++;
        totals.bytes += data.length;
        return { ...base, mt: seen.mtimeMs, s: data.length, c: [hash] };
      }
    }
    for (let attempt = 1; ; attempt++) {
      const fh = await fs.open(path, 'r');
      try {
        const start = await fh.stat();
        const chunks: string[] = [];
        const pending: Array<Promise<void>> = [];
        let size = 0;
        for (;;) {
          const data = await readChunk(fh, size, start.size - size);
          const n = data.length;
          if (!n && size) break;
          chunks.push(await offer(data, pending));
          size += n;
          if (n < CHUNK_SIZE) break;
        }
        await Promise.all(pending);
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
  const linked = new Map<string, string>();
  const walk = async (dirRel: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(posix.join(h.root, dirRel)).sort();
    } catch (e) {
      return warn(dirRel || '.', (e as Error).message);
    }
    const subdirs: string[] = [];
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (excluded(rel)) continue;
      const st = lstatSync(posix.join(h.root, rel), { throwIfNoEntry: false });
      if (!st) continue; // removed while we walked
      if (st.isDirectory()) {
        await w.write(FRAME.file, JSON.stringify({ p: rel, t: 'd', m: st.mode & 0o7777, mt: st.mtimeMs, s: 0 } satisfies FileEntry));
        subdirs.push(rel);
      } else if (st.isSymbolicLink()) {
        const target = await fs.readlink(posix.join(h.root, rel));
        await w.write(FRAME.file, JSON.stringify({ p: rel, t: 'l', m: 0o777, mt: st.mtimeMs, s: 0, l: target } satisfies FileEntry));
      } else if (st.isFile()) {
        // A file with several names is stored once; its other names come back as hard links (as tar does).
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? linked.get(inode) : undefined;
        if (first !== undefined) {
          await w.write(FRAME.file, JSON.stringify({ p: rel, t: 'h', m: st.mode & 0o7777, mt: st.mtimeMs, s: 0, l: first } satisfies FileEntry));
          continue;
        }
        if (st.nlink > 1) linked.set(inode, rel);
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

/** Opens for writing; a read-only file left by an earlier, interrupted restore (git objects are 0444) is replaced. */
function openForRestore(path: string): number {
  try {
    return openSync(path, 'w', 0o600);
  } catch {
    rmSync(path, { force: true });
    return openSync(path, 'w', 0o600);
  }
}

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
  process.umask(0); // modes exactly as snapshotted
  const marker = posix.join(root, RESTORING_MARKER);
  await fs.mkdir(posix.dirname(marker), { recursive: true });
  await fs.writeFile(marker, '');
  const dirs: FileEntry[] = [];
  const links: FileEntry[] = [];
  const made = new Set<string>();
  const mkdirOnce = async (dir: string) => {
    if (made.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
    made.add(dir);
  };
  // Chunks are decompressed, checked and written in parallel (positional writes: a chunk's offset is its index ×
  // CHUNK_SIZE), several files at once; the stream is read no faster than they are written.
  const chunkSlots = new Slots(4);
  const fileSlots = new Slots(64);
  const finishing: Array<Promise<void>> = [];
  let failure: Error | undefined;
  let files = 0;
  let bytes = 0;
  for (;;) {
    if (failure) throw failure;
    const f = await next();
    if (f.type === FRAME.end) break;
    if (f.type !== FRAME.file) throw new Error(`unexpected frame ${f.type} in the snapshot stream`);
    const e = JSON.parse(f.payload.toString()) as FileEntry;
    const path = safeJoin(root, e.p);
    if (e.t === 'd') {
      await mkdirOnce(path);
      dirs.push(e);
      continue;
    }
    if (e.t === 'l' || e.t === 'h') {
      links.push(e);
      continue;
    }
    await mkdirOnce(posix.dirname(path));
    // Straight to the final name: the volume is empty and carries the restore marker until the end, so a half-written
    // file is never taken for a restored one. Small files are written with blocking calls (see snapshotFile).
    if ((e.c?.length ?? 0) <= 1 && e.s < SMALL) {
      const c = e.c?.length ? parseChunk((await next()).payload) : undefined;
      const data = c ? unpack(c.codec, c.data, e.s) : Buffer.alloc(0);
      if (c && (c.hash !== e.c![0] || createHash('sha256').update(data).digest('hex') !== c.hash)) throw new Error(`checksum mismatch in ${e.p}: the snapshot is damaged`);
      const fd = openForRestore(path);
      try {
        if (data.length) writeSync(fd, data);
        fchmodSync(fd, e.m);
        futimesSync(fd, new Date(), new Date(e.mt));
      } finally {
        closeSync(fd);
      }
      files++;
      bytes += data.length;
      continue;
    }
    await fileSlots.take();
    const fh = await fs.open(path, 'w', 0o600).catch(async () => (await fs.rm(path, { force: true }), fs.open(path, 'w', 0o600)));
    const writes: Array<Promise<void>> = [];
    for (const [i, expected] of (e.c ?? []).entries()) {
      const c = parseChunk((await next()).payload);
      const write = async () => {
        const data = await unpackAsync(c.codec, c.data);
        if (c.hash !== expected || createHash('sha256').update(data).digest('hex') !== expected) {
          throw new Error(`checksum mismatch in ${e.p}: the snapshot is damaged`);
        }
        await fh.write(data, 0, data.length, i * CHUNK_SIZE);
        bytes += data.length;
      };
      writes.push((await chunkSlots.start(write)).done);
    }
    const done = Promise.all(writes)
      .then(() => fh.chmod(e.m))
      .then(() => fh.utimes(new Date(), new Date(e.mt)))
      .finally(() => fh.close())
      .then(() => void files++)
      .catch((err: Error) => void (failure ??= err))
      .finally(() => fileSlots.give());
    finishing.push(done);
  }
  await Promise.all(finishing);
  if (failure) throw failure;
  // Links last, so no file above was written through a link the snapshot made; directory times last of all.
  for (const e of links) {
    const path = safeJoin(root, e.p);
    await fs.rm(path, { force: true, recursive: false }).catch(() => undefined);
    // A hard link whose first name could not be read (and so was skipped) has nothing to point at.
    if (e.t === 'h') await fs.link(safeJoin(root, e.l!), path).catch(() => undefined);
    else await fs.symlink(e.l!, path);
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
    // Exit once the output is flushed, whatever stdin is doing.
    () => process.stdout.end(() => process.exit(0)),
    (e: Error) => {
      process.stderr.write(`claude-vm snapshot: ${e.message}\n`);
      process.exit(3);
    },
  );
}
