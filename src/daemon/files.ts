/**
 * @module Files of the workspace for the API (browse, read, write, delete), served by the daemon so it works the
 * same on every provider. Confined to the workspace root (symlinks included), and the daemon's own directory
 * (which holds the tunnel token) is out of bounds.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, rmdirSync, statSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';

const MAX_READ = 10 * 1024 * 1024;

export class FileError extends Error {
  constructor(
    readonly code: 'not_found' | 'invalid_argument' | 'forbidden',
    message: string,
  ) {
    super(message);
  }
}

export interface Entry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  mtime: string;
}

export class WorkspaceFiles {
  constructor(
    /** The persistent root (/workspace); nothing outside it is reachable. */
    private readonly root: string,
    /** The daemon's directory inside it, never exposed. */
    private readonly private_: string,
  ) {}

  /** Resolves a path (relative to `base`) to one inside the root, following symlinks of existing parts. */
  private resolve(path: string, base: string): string {
    const wanted = resolve(isAbsolute(path) ? path : join(base, path));
    // The deepest existing ancestor decides where a symlink really leads.
    let existing = wanted;
    while (!existsSync(existing) && existing !== dirname(existing)) existing = dirname(existing);
    const real = join(realpathSync(existing), relative(existing, wanted));
    const rootReal = realpathSync(this.root);
    if (real !== rootReal && !real.startsWith(rootReal + '/')) throw new FileError('forbidden', `${path} is outside the workspace.`);
    const priv = join(rootReal, relative(this.root, this.private_));
    if (real === priv || real.startsWith(priv + '/')) throw new FileError('forbidden', `${path} is claude-vm's own directory.`);
    return real;
  }

  get(path: string, base: string): { path: string; type: 'dir'; entries: Entry[] } | { path: string; type: 'file'; size: number; contentBase64: string } {
    const p = this.resolve(path, base);
    if (!existsSync(p)) throw new FileError('not_found', `No such file or directory: ${path}.`);
    const st = statSync(p);
    if (st.isDirectory()) {
      const entries = readdirSync(p, { withFileTypes: true })
        .filter((d) => join(p, d.name) !== this.private_)
        .map((d) => {
          const s = lstatSync(join(p, d.name));
          return { name: d.name, type: d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'link' : 'other', size: s.size, mtime: s.mtime.toISOString() } as Entry;
        })
        .sort((a, b) => (a.type === 'dir' ? 0 : 1) - (b.type === 'dir' ? 0 : 1) || a.name.localeCompare(b.name));
      return { path: p, type: 'dir', entries };
    }
    if (st.size > MAX_READ) throw new FileError('invalid_argument', `${path} is ${st.size} bytes; files over ${MAX_READ} bytes are not served this way.`);
    return { path: p, type: 'file', size: st.size, contentBase64: readFileSync(p).toString('base64') };
  }

  /** Writes through a temporary file and a rename, so a reader never sees half a file. */
  put(path: string, base: string, contentBase64: string, mode?: number): { path: string; size: number } {
    const p = this.resolve(path, base);
    if (existsSync(p) && statSync(p).isDirectory()) throw new FileError('invalid_argument', `${path} is a directory.`);
    mkdirSync(dirname(p), { recursive: true });
    const data = Buffer.from(contentBase64, 'base64');
    const tmp = `${p}.claude-vm-${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: mode ?? 0o644 });
    renameSync(tmp, p);
    return { path: p, size: data.length };
  }

  delete(path: string, base: string): { deleted: string } {
    const p = this.resolve(path, base);
    if (p === realpathSync(this.root)) throw new FileError('forbidden', 'The workspace root cannot be deleted.');
    if (!existsSync(p)) throw new FileError('not_found', `No such file or directory: ${path}.`);
    if (statSync(p).isDirectory()) rmdirSync(p);
    else rmSync(p);
    return { deleted: p };
  }
}
