/** Uncommitted changes in the workspace: files, the unified diff per file (collapsible), commit and push. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { enc, get, post } from '../api';
import { DiffBlock, diffLines } from '../components/tool';
import { ErrorBox, Icon, Spinner } from '../components/ui';
import { errorToast, toast } from '../store';
import type { Changes, WorkspaceInfo } from '../types';

const STATUS_MARK: Record<string, string> = { modified: 'M', added: 'A', deleted: 'D', untracked: 'U' };
const PER_FILE_LINES = 400;

/** Splits a unified diff into per-file sections, keyed by the path they change. */
function splitDiff(diff: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = diff.split(/^(?=diff --git )/m);
  for (const p of parts) {
    if (!p.trim()) continue;
    const m = /^diff --git a\/(.*?) b\/(.*)$/m.exec(p);
    const plus = /^\+\+\+ b\/(.*)$/m.exec(p);
    const minus = /^--- a\/(.*)$/m.exec(p);
    const path = plus?.[1] ?? minus?.[1] ?? m?.[2] ?? `(diff ${out.size + 1})`;
    out.set(path.trim(), p);
  }
  return out;
}

export function ChangesView(props: { w: WorkspaceInfo }) {
  const { w } = props;
  const [data, setData] = useState<Changes | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState<null | 'commit' | 'push'>(null);
  const [output, setOutput] = useState<string | null>(null);
  const [full, setFull] = useState<Set<string>>(new Set());

  const load = () => {
    setLoading(true);
    get<Changes>(`/workspaces/${enc(w.id)}/changes`).then(
      (d) => {
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        setError(e);
        setLoading(false);
      },
    );
  };
  useEffect(load, [w.id, w.status]);

  const sections = useMemo(() => (data ? splitDiff(data.diff) : new Map<string, string>()), [data]);

  const commit = async (push: boolean) => {
    if (!message.trim()) return;
    setBusy(push ? 'push' : 'commit');
    setOutput(null);
    try {
      const r = await post<{ commit: string; pushed: boolean; output: string }>(`/workspaces/${enc(w.id)}/git/commit`, { message: message.trim(), ...(push ? { push: true } : {}) });
      toast({ kind: 'ok', title: `Committed ${r.commit.slice(0, 8)}${r.pushed ? ' and pushed' : ''}` });
      setOutput(r.output || null);
      setMessage('');
      load();
    } catch (e) {
      errorToast(e, push ? 'Commit & push failed' : 'Commit failed');
    } finally {
      setBusy(null);
    }
  };

  if (w.status !== 'running' && !data) return <p class="muted pad">Changes are read from the running workspace; resume it to see them.</p>;
  if (loading && !data) return <Spinner label="Reading changes…" />;
  if (error && !data) return <ErrorBox error={error} onRetry={load} />;
  if (!data) return null;

  return (
    <div class="changes pad">
      <div class="row-between">
        <h2 class="section-title">
          {data.files.length ? `${data.files.length} changed file${data.files.length === 1 ? '' : 's'}` : 'No changes'}
          {data.base && <span class="muted small"> against {data.base.slice(0, 10)}</span>}
        </h2>
        <button type="button" class="btn small" onClick={load} disabled={loading} aria-label="Refresh changes">
          <Icon name="refresh" /> <span class="label-wide">Refresh</span>
        </button>
      </div>

      {data.files.length > 0 && (
        <form class="commit card" onSubmit={(e) => (e.preventDefault(), void commit(false))}>
          <label for="commit-msg">Commit message</label>
          <textarea id="commit-msg" rows={2} value={message} onInput={(e) => setMessage((e.target as HTMLTextAreaElement).value)} placeholder="What changed, and why" />
          <div class="row-end">
            <button type="submit" class="btn" disabled={!!busy || !message.trim()}>
              {busy === 'commit' ? 'Committing…' : 'Commit'}
            </button>
            <button type="button" class="btn primary" disabled={!!busy || !message.trim()} onClick={() => commit(true)}>
              {busy === 'push' ? 'Pushing…' : 'Commit & push'}
            </button>
          </div>
          {output && (
            <pre class="code out" tabIndex={0}>
              {output}
            </pre>
          )}
        </form>
      )}

      <ul class="diff-files">
        {data.files.map((f) => {
          const text = sections.get(f.path);
          const lines = text ? diffLines(text.replace(/\n$/, '')) : [];
          const adds = lines.filter((l) => l.kind === 'add').length;
          const dels = lines.filter((l) => l.kind === 'del').length;
          const showAll = full.has(f.path);
          return (
            <li key={f.path}>
              <details class="diff-file" open={data.files.length <= 8}>
                <summary>
                  <span class={`fstatus ${f.status}`} title={f.status}>
                    {STATUS_MARK[f.status] ?? '?'}
                  </span>
                  <span class="fpath">{f.path}</span>
                  <span class="fcounts">
                    {adds > 0 && <span class="plus">+{adds}</span>} {dels > 0 && <span class="minus">−{dels}</span>}
                  </span>
                </summary>
                {text ? (
                  <>
                    <DiffBlock lines={lines} label={`Diff of ${f.path}`} max={showAll ? undefined : PER_FILE_LINES} />
                    {lines.length > PER_FILE_LINES && !showAll && (
                      <button type="button" class="link-btn" onClick={() => setFull((s) => new Set(s).add(f.path))}>
                        Show all {lines.length} lines
                      </button>
                    )}
                  </>
                ) : (
                  <p class="muted small pad">{f.status === 'untracked' ? 'New file, not in the diff yet.' : 'No text diff (binary, or mode only).'}</p>
                )}
              </details>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
