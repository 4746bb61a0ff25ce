/**
 * @module `workspace export` / `import`: one snapshot as a plain tar (manifest.json first, then packs/<id>), so a
 * backup is one file that any tar can list. Both directions stream: a pack at a time is in memory, never the tar.
 */
import type { Readable, Writable } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import { unseal, type Manifest } from './engine.js';

const BLOCK = 512;

/** One ustar header (owned by root, dated now): a regular file by default, `type` '5' for a directory. */
export function ustarHeader(name: string, size: number, mode = 0o600, type: '0' | '5' = '0'): Buffer {
  const h = Buffer.alloc(BLOCK);
  const octal = (v: number, len: number) => v.toString(8).padStart(len - 1, '0') + '\0';
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  h.write('        ', 148); // checksum is computed with its own field as spaces
  h.write(type, 156);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

async function put(out: Writable, data: Buffer): Promise<void> {
  if (!out.write(data)) await new Promise((r) => out.once('drain', r));
}

async function entry(out: Writable, name: string, body: Buffer): Promise<void> {
  await put(out, ustarHeader(name, body.length));
  await put(out, body);
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  if (pad) await put(out, Buffer.alloc(pad));
}

export async function writeExport(out: Writable, manifest: Buffer, packIds: string[], pack: (id: string) => Promise<Buffer>): Promise<void> {
  await entry(out, 'manifest.json', manifest);
  for (const id of packIds) await entry(out, `packs/${id}`, await pack(id));
  await put(out, Buffer.alloc(BLOCK * 2));
}

/** Reads exactly n bytes at a time from a stream. */
class Bytes {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  constructor(input: Readable) {
    this.it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) {
      const r = await this.it.next();
      if (r.done) return undefined;
      this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

export interface OpenedExport {
  manifest: Manifest;
  /** The packs, in the order the tar holds them; read once. */
  packs(): AsyncGenerator<{ id: string; body: Buffer }>;
}

const damaged = (why: string) => new UserError('invalid_argument', `This is not a claude-vm workspace export (${why}).`, 'Make one with `claude-vm workspace export <id> -o file.tar`.');

export async function openExport(input: Readable): Promise<OpenedExport> {
  const bytes = new Bytes(input);
  const next = async (): Promise<{ name: string; body: Buffer } | undefined> => {
    const h = await bytes.read(BLOCK);
    if (!h || h.every((b) => b === 0)) return undefined;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isFinite(size)) throw damaged('a bad tar header');
    const body = await bytes.read(size);
    if (!body) throw damaged('it ends early');
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await bytes.read(pad);
    return { name, body: Buffer.from(body) };
  };
  const first = await next().catch((e: unknown) => {
    throw e instanceof UserError ? e : damaged((e as Error).message);
  });
  if (!first || first.name !== 'manifest.json') throw damaged('no manifest.json at its start');
  let manifest: Manifest;
  try {
    manifest = unseal<Manifest>(first.body, 'manifest.json');
  } catch {
    throw damaged('its manifest is damaged');
  }
  if (manifest.version !== 1) throw damaged(`manifest version ${String(manifest.version)}`);
  return {
    manifest,
    async *packs() {
      for (let e = await next(); e; e = await next()) {
        const m = /^packs\/([0-9a-f]{24})$/.exec(e.name);
        if (!m) throw damaged(`an unexpected entry ${e.name}`);
        yield { id: m[1]!, body: e.body };
      }
    },
  };
}
