/** The workspace's files: browse, view text, edit and save, upload, download, delete. Paths are project-relative. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, enc, fromBase64, get, put, toBase64 } from '../api';
import { Confirm, ErrorBox, Icon, Spinner } from '../components/ui';
import { ago, bytes } from '../format';
import { errorToast, toast } from '../store';
import type { FileEntry, FileListing, WorkspaceInfo } from '../types';

function join(dir: string, name: string): string {
  return dir === '.' || dir === '' ? name : `${dir.replace(/\/$/, '')}/${name}`;
}

function parent(path: string): string {
  const i = path.replace(/\/$/, '').lastIndexOf('/');
  return i <= 0 ? '.' : path.slice(0, i);
}

function isText(data: Uint8Array): boolean {
  const n = Math.min(data.length, 8000);
  for (let i = 0; i < n; i++) if (data[i] === 0) return false;
  return true;
}

export function FilesView(props: { w: WorkspaceInfo }) {
  const { w } = props;
  const [path, setPath] = useState('.');
  const [listing, setListing] = useState<FileListing | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  const upload = useRef<HTMLInputElement>(null);

  const load = (p = path) => {
    setLoading(true);
    setEditing(null);
    get<FileListing>(`/workspaces/${enc(w.id)}/files?path=${enc(p)}`).then(
      (l) => {
        setListing(l);
        setError(null);
        setLoading(false);
      },
      (e) => {
        setError(e);
        setLoading(false);
      },
    );
  };
  useEffect(() => load(path), [path, w.id]);

  if (w.status !== 'running') return <p class="muted pad">Files are read from the running workspace; resume it to browse them.</p>;

  const crumbs = path === '.' ? [] : path.split('/');
  const isDir = listing?.type === 'dir';
  const data = listing && listing.type === 'file' ? fromBase64(listing.contentBase64) : null;
  const text = data && isText(data) ? new TextDecoder().decode(data) : null;
  const dirOfUpload = isDir ? path : parent(path);

  const download = () => {
    if (!data) return;
    const url = URL.createObjectURL(new Blob([data as BlobPart]));
    const a = document.createElement('a');
    a.href = url;
    a.download = path.split('/').pop() ?? 'file';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const save = async () => {
    if (editing === null) return;
    setSaving(true);
    try {
      await put(`/workspaces/${enc(w.id)}/files`, { path, contentBase64: toBase64(new TextEncoder().encode(editing)) });
      toast({ kind: 'ok', title: `Saved ${path}` });
      load(path);
    } catch (e) {
      errorToast(e, 'Not saved');
    } finally {
      setSaving(false);
    }
  };

  const onUpload = async (files: FileList | null) => {
    if (!files?.length) return;
    for (const f of Array.from(files)) {
      try {
        const target = join(dirOfUpload, f.name);
        await put(`/workspaces/${enc(w.id)}/files`, { path: target, contentBase64: toBase64(new Uint8Array(await f.arrayBuffer())) });
        toast({ kind: 'ok', title: `Uploaded ${target}` });
      } catch (e) {
        errorToast(e, `Upload of ${f.name} failed`);
      }
    }
    if (upload.current) upload.current.value = '';
    if (isDir) load(path);
  };

  const remove = async () => {
    const p = confirmDelete;
    setConfirmDelete(null);
    if (!p) return;
    try {
      await del(`/workspaces/${enc(w.id)}/files?path=${enc(p)}`);
      toast({ kind: 'ok', title: `Deleted ${p}` });
      if (p === path) setPath(parent(p));
      else load(path);
    } catch (e) {
      errorToast(e, 'Not deleted');
    }
  };

  return (
    <div class="files pad">
      <div class="row-between files-bar">
        <nav class="crumbs" aria-label="Folder">
          <button type="button" class="link-btn" onClick={() => setPath('.')}>
            {w.projectDir.split('/').pop() || 'project'}
          </button>
          {crumbs.map((c, i) => (
            <span key={i}>
              <span class="sep" aria-hidden="true">
                /
              </span>
              <button type="button" class="link-btn" onClick={() => setPath(crumbs.slice(0, i + 1).join('/'))} aria-current={i === crumbs.length - 1 ? 'location' : undefined}>
                {c}
              </button>
            </span>
          ))}
        </nav>
        <div class="row-end">
          <input ref={upload} type="file" multiple class="sr-only" tabIndex={-1} aria-hidden="true" onChange={(e) => onUpload((e.target as HTMLInputElement).files)} />
          <button type="button" class="btn small" onClick={() => upload.current?.click()}>
            <Icon name="upload" /> Upload{isDir ? '' : ' here'}
          </button>
        </div>
      </div>

      {loading && !listing ? (
        <Spinner label="Reading…" />
      ) : error ? (
        <ErrorBox error={error} onRetry={() => load(path)} />
      ) : listing?.type === 'dir' ? (
        <ul class="file-list" aria-label={`Contents of ${path === '.' ? 'the project' : path}`}>
          {path !== '.' && (
            <li>
              <button type="button" class="file-row" onClick={() => setPath(parent(path))}>
                <Icon name="up" />
                <span class="fname">..</span>
              </button>
            </li>
          )}
          {listing.entries.map((e: FileEntry) => (
            <li key={e.name} class="file-li">
              <button type="button" class="file-row" onClick={() => (e.type === 'dir' || e.type === 'file' || e.type === 'link' ? setPath(join(path, e.name)) : undefined)}>
                <Icon name={e.type === 'dir' ? 'folder' : 'file'} />
                <span class="fname">{e.name}</span>
                <span class="muted small fmeta">
                  {e.type === 'dir' ? '' : bytes(e.size)} {ago(e.mtime)}
                </span>
              </button>
              <button type="button" class="icon-btn" aria-label={`Delete ${e.name}`} onClick={() => setConfirmDelete(join(path, e.name))}>
                <Icon name="trash" />
              </button>
            </li>
          ))}
          {listing.entries.length === 0 && <li class="muted pad">Empty folder.</li>}
        </ul>
      ) : listing?.type === 'file' ? (
        <div class="file-view">
          <div class="row-between">
            <p class="muted small">{bytes(listing.size)}</p>
            <div class="row-end">
              {text !== null && editing === null && (
                <button type="button" class="btn small" onClick={() => setEditing(text)}>
                  Edit
                </button>
              )}
              {editing !== null && (
                <>
                  <button type="button" class="btn small" onClick={() => setEditing(null)}>
                    Cancel
                  </button>
                  <button type="button" class="btn small primary" disabled={saving} onClick={save}>
                    {saving ? 'Saving…' : 'Save'}
                  </button>
                </>
              )}
              <button type="button" class="btn small" onClick={download}>
                <Icon name="download" /> Download
              </button>
              <button type="button" class="btn small danger-ghost" onClick={() => setConfirmDelete(path)}>
                <Icon name="trash" /> Delete
              </button>
            </div>
          </div>
          {editing !== null ? (
            <>
              <label for="file-editor" class="sr-only">
                Contents of {path}
              </label>
              <textarea id="file-editor" class="editor" value={editing} spellcheck={false} autocapitalize="off" onInput={(e) => setEditing((e.target as HTMLTextAreaElement).value)} />
            </>
          ) : text !== null ? (
            <pre class="code file-text" tabIndex={0} aria-label={`Contents of ${path}`}>
              {text.length > 400_000 ? text.slice(0, 400_000) + '\n… (truncated; download for the rest)' : text}
            </pre>
          ) : (
            <p class="muted">A binary file; download it to open it.</p>
          )}
        </div>
      ) : null}

      <Confirm open={!!confirmDelete} title={`Delete ${confirmDelete ?? ''}?`} confirmLabel="Delete" danger onClose={() => setConfirmDelete(null)} onConfirm={remove}>
        <p>This cannot be undone. A folder must be empty to be deleted.</p>
      </Confirm>
    </div>
  );
}
