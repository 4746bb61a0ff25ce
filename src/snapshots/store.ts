/**
 * @module Where snapshots are kept: a directory (the default, under $CLAUDE_VM_HOME) or any S3-compatible bucket,
 * optionally encrypted before anything leaves this process. Objects are written once and never changed, so a
 * store needs only put, get, list and delete; `put` is atomic (a reader sees all of an object or none of it).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { UserError } from '../protocol/errors.js';

export interface ObjectStore {
  /** Where it is, for messages (never credentials). */
  readonly description: string;
  put(key: string, body: Buffer): Promise<void>;
  /** Throws a `not_found` UserError when the object does not exist. */
  get(key: string): Promise<Buffer>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  delete(keys: string[]): Promise<void>;
}

export class FileStore implements ObjectStore {
  constructor(readonly dir: string) {}

  get description(): string {
    return this.dir;
  }

  private path(key: string): string {
    if (key.split('/').some((s) => s === '..' || s === '')) throw new Error(`bad object key ${key}`);
    return join(this.dir, ...key.split('/'));
  }

  async put(key: string, body: Buffer): Promise<void> {
    const path = this.path(key);
    await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // Write aside, flush, then rename: a crash leaves the old state or the whole new object, never part of one.
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  }

  async get(key: string): Promise<Buffer> {
    return fs.readFile(this.path(key)).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new UserError('not_found', `Snapshot object ${key} is missing from ${this.dir}.`) : e;
    });
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (!e.name.includes('.tmp-')) out.push(relative(this.dir, p).split(sep).join('/'));
      }
    };
    await walk(join(this.dir, ...prefix.split('/').filter(Boolean)));
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  async delete(keys: string[]): Promise<void> {
    await Promise.all(keys.map((k) => fs.rm(this.path(k), { force: true })));
  }
}

/**
 * Client-side encryption (AES-256-GCM, a fresh nonce per object): the store holds only ciphertext, and a changed
 * or swapped object fails authentication instead of being restored.
 */
export class EncryptedStore implements ObjectStore {
  private readonly key: Buffer;
  constructor(private readonly inner: ObjectStore, secret: Buffer) {
    this.key = createHash('sha256').update('claude-vm:snapshots:').update(secret).digest();
  }

  get description(): string {
    return `${this.inner.description} (encrypted)`;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(key)); // an object moved to another key does not decrypt
    const data = Buffer.concat([c.update(body), c.final()]);
    await this.inner.put(key, Buffer.concat([iv, c.getAuthTag(), data]));
  }

  async get(key: string): Promise<Buffer> {
    const raw = await this.inner.get(key);
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(key));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
    } catch {
      throw new UserError('wrong_state', `Snapshot object ${key} does not decrypt: it was changed, or the key is not the one it was written with.`);
    }
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }
}

/**
 * `file:/path` (or a plain path), or `s3://bucket[/prefix]?endpoint=URL&region=R&path-style=1`. S3 credentials come
 * from the standard AWS variables and files (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE…), never the URL.
 */
export async function openStore(spec: string, opts: { encryptWith?: Buffer } = {}): Promise<ObjectStore> {
  let store: ObjectStore;
  if (spec.startsWith('s3://')) {
    const { S3Store } = await import('./s3-store.js');
    store = S3Store.fromUrl(spec);
  } else if (spec.startsWith('file:') || spec.startsWith('/')) {
    store = new FileStore(spec.replace(/^file:(\/\/)?/, ''));
  } else {
    throw new UserError('invalid_argument', `Unknown snapshot store "${spec}".`, 'Use file:/path/to/dir or s3://bucket/prefix?endpoint=https://…');
  }
  return opts.encryptWith ? new EncryptedStore(store, opts.encryptWith) : store;
}
