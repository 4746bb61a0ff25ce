/** The dashboard: workspace cards (live), per-card and batch stop/resume/delete, and the Launch form. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { del, enc, get, post, withProgress, type Progress } from '../api';
import { AgentField, Badge, Confirm, Dialog, Icon, Spinner, useNow } from '../components/ui';
import { ago, duration, parseDuration, usd, workspaceName } from '../format';
import { errorToast, liveUsage, setWorkspace, toast, useStore } from '../store';
import { type ProviderInfo, type ProviderType, type UpResult, type WorkspaceInfo } from '../types';

const BUSY = new Set(['creating', 'starting', 'stopping', 'deleting']);

async function stopWorkspace(w: WorkspaceInfo): Promise<void> {
  const r = await post<WorkspaceInfo>(`/workspaces/${enc(w.id)}/stop`, {});
  if (r && typeof r === 'object' && 'id' in r) setWorkspace(r);
}

async function startWorkspace(w: WorkspaceInfo, onProgress?: (p: Progress) => void): Promise<void> {
  const r = await withProgress<UpResult>(`/workspaces/${enc(w.id)}/start`, {}, onProgress ?? (() => undefined));
  if (r?.workspace) setWorkspace(r.workspace);
}

async function deleteWorkspace(w: WorkspaceInfo, purge: boolean): Promise<void> {
  await del(`/workspaces/${enc(w.id)}${purge ? '?purge=true' : ''}`);
}

export function Dashboard() {
  const workspaces = useStore((s) => s.workspaces);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [launching, setLaunching] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState<WorkspaceInfo[] | null>(null);
  const [purge, setPurge] = useState(false);
  const [pending, setPending] = useState<Record<string, string>>({});
  const now = useNow(15_000);

  // Forget selections of workspaces that went away.
  useEffect(() => {
    if (!workspaces) return;
    const ids = new Set(workspaces.map((w) => w.id));
    setSelected((s) => (Array.from(s).every((id) => ids.has(id)) ? s : new Set(Array.from(s).filter((id) => ids.has(id)))));
  }, [workspaces]);

  const sorted = useMemo(
    () =>
      [...(workspaces ?? [])].sort(
        (a, b) => Number(b.status === 'running') - Number(a.status === 'running') || (b.lastActivityAt ?? b.updatedAt).localeCompare(a.lastActivityAt ?? a.updatedAt),
      ),
    [workspaces],
  );

  const act = async (ws: WorkspaceInfo[], label: string, f: (w: WorkspaceInfo) => Promise<void>) => {
    setPending((p) => ({ ...p, ...Object.fromEntries(ws.map((w) => [w.id, label])) }));
    await Promise.all(
      ws.map(async (w) => {
        try {
          await f(w);
        } catch (e) {
          errorToast(e, `${label} ${workspaceName(w)} failed`);
        } finally {
          setPending((p) => {
            const n = { ...p };
            delete n[w.id];
            return n;
          });
        }
      }),
    );
  };

  const toggle = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  const chosen = sorted.filter((w) => selected.has(w.id));

  return (
    <section class="page" aria-labelledby="ws-title">
      <div class="page-head">
        <h1 id="ws-title">Workspaces</h1>
        <button type="button" class="btn primary" onClick={() => setLaunching(true)}>
          <Icon name="plus" /> Launch
        </button>
      </div>

      {chosen.length > 0 && (
        <div class="batch-bar" role="region" aria-label="Selected workspaces">
          <span>{chosen.length} selected</span>
          <button type="button" class="btn" onClick={() => act(chosen.filter((w) => w.status === 'running'), 'Stopping', stopWorkspace)}>
            <Icon name="stop" /> Stop
          </button>
          <button type="button" class="btn danger" onClick={() => (setPurge(false), setConfirmDelete(chosen))}>
            <Icon name="trash" /> Delete
          </button>
          <button type="button" class="icon-btn" aria-label="Clear the selection" onClick={() => setSelected(new Set())}>
            <Icon name="close" />
          </button>
        </div>
      )}

      {workspaces === null ? (
        <Spinner label="Loading workspaces…" />
      ) : sorted.length === 0 ? (
        <div class="empty card">
          <h2>No workspaces yet</h2>
          <p class="muted">Launch one from a local path or a git URL; agents then work inside it while you watch from here.</p>
          <button type="button" class="btn primary" onClick={() => setLaunching(true)}>
            Launch a workspace
          </button>
        </div>
      ) : (
        <ul class="cards" aria-label="Your workspaces">
          {sorted.map((w) => (
            <WorkspaceCard
              key={w.id}
              w={w}
              now={now}
              selected={selected.has(w.id)}
              pending={pending[w.id]}
              onToggle={() => toggle(w.id)}
              onStop={() => act([w], 'Stopping', stopWorkspace)}
              onStart={() => act([w], 'Starting', (x) => startWorkspace(x))}
              onDelete={() => (setPurge(false), setConfirmDelete([w]))}
            />
          ))}
        </ul>
      )}

      <Confirm
        open={!!confirmDelete}
        title={confirmDelete && confirmDelete.length > 1 ? `Delete ${confirmDelete.length} workspaces?` : `Delete ${confirmDelete?.[0] ? workspaceName(confirmDelete[0]) : ''}?`}
        confirmLabel={purge ? 'Delete and purge' : 'Delete'}
        danger
        onClose={() => setConfirmDelete(null)}
        onConfirm={async () => {
          const list = confirmDelete ?? [];
          setConfirmDelete(null);
          setSelected(new Set());
          await act(list, 'Deleting', (w) => deleteWorkspace(w, purge));
        }}
      >
        <p>The container goes away. Its files stay on the volume (resume it later with Launch) unless you purge them.</p>
        <label class="check">
          <input type="checkbox" checked={purge} onChange={(e) => setPurge((e.target as HTMLInputElement).checked)} />
          <span>Also purge the volume (the files are lost)</span>
        </label>
      </Confirm>

      <Dialog open={launching} title="Launch a workspace" onClose={() => setLaunching(false)} wide>
        {launching && <LaunchForm onDone={() => setLaunching(false)} />}
      </Dialog>
    </section>
  );
}

function WorkspaceCard(props: {
  w: WorkspaceInfo;
  now: number;
  selected: boolean;
  pending?: string;
  onToggle: () => void;
  onStop: () => void;
  onStart: () => void;
  onDelete: () => void;
}) {
  const { w } = props;
  const name = workspaceName(w);
  const busy = !!props.pending || BUSY.has(w.status);
  const usage = liveUsage(w, props.now);
  const source = w.project.sourceKind === 'empty' ? 'empty workspace' : w.project.source;
  return (
    <li class={`card ws-card${props.selected ? ' selected' : ''}`}>
      <div class="ws-card-top">
        <label class="select-box" title={`Select ${name}`}>
          <input type="checkbox" checked={props.selected} onChange={props.onToggle} aria-label={`Select ${name}`} />
        </label>
        <a class="ws-title" href={`#/w/${enc(w.id)}`}>
          <h2>{name}</h2>
          <span class="ws-source" title={source}>
            {source}
            {w.branch ? ` · ${w.branch}` : ''}
          </span>
        </a>
        {props.pending ? <Badge status="starting" label={props.pending.toLowerCase() + '…'} /> : <Badge status={w.status} />}
      </div>
      {w.status === 'error' && w.statusReason && <p class="ws-reason">{w.statusReason}</p>}
      <dl class="facts">
        <div>
          <dt>Provider</dt>
          <dd>{w.provider}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>{w.size}</dd>
        </div>
        <div>
          <dt>Uptime</dt>
          <dd>{duration(usage.uptimeSeconds)}</dd>
        </div>
        <div>
          <dt>Cost</dt>
          <dd>{usd(usage.costUsd)}</dd>
        </div>
        <div class="wide">
          <dt>Last activity</dt>
          <dd>{ago(w.lastActivityAt ?? w.updatedAt, props.now)}</dd>
        </div>
      </dl>
      <div class="card-actions">
        <a class="btn" href={`#/w/${enc(w.id)}`}>
          Open
        </a>
        {w.status === 'running' ? (
          <button type="button" class="btn" disabled={busy} onClick={props.onStop} aria-label={`Stop ${name}`}>
            <Icon name="stop" /> Stop
          </button>
        ) : (
          <button type="button" class="btn" disabled={busy} onClick={props.onStart} aria-label={`Resume ${name}`}>
            <Icon name="play" /> Resume
          </button>
        )}
        <button type="button" class="btn danger-ghost" disabled={busy && w.status !== 'error'} onClick={props.onDelete} aria-label={`Delete ${name}`}>
          <Icon name="trash" /> Delete
        </button>
      </div>
    </li>
  );
}

function LaunchForm(props: { onDone: () => void }) {
  const [providers, setProviders] = useState<ProviderInfo[] | null>(null);
  const [types, setTypes] = useState<ProviderType[]>([]);
  const [target, setTarget] = useState('');
  const [branch, setBranch] = useState('');
  const [name, setName] = useState('');
  const [provider, setProvider] = useState('');
  const [size, setSize] = useState('');
  const [agent, setAgent] = useState('claude');
  const [autoStop, setAutoStop] = useState('');
  const [steps, setSteps] = useState<Progress[]>([]);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<{ message: string; hint?: string } | null>(null);

  useEffect(() => {
    void Promise.all([get<ProviderInfo[]>('/providers'), get<ProviderType[]>('/provider-types')])
      .then(([p, t]) => {
        setProviders(p);
        setTypes(t);
      })
      .catch((e) => {
        setProviders([]);
        errorToast(e, 'Could not list providers');
      });
  }, []);

  const chosenType = types.find((t) => t.type === (providers?.find((p) => p.name === provider)?.type ?? providers?.[0]?.type));
  const sizes = chosenType ? Object.entries(chosenType.sizes) : [];
  const autoStopSeconds = parseDuration(autoStop);
  const autoStopInvalid = autoStopSeconds !== undefined && Number.isNaN(autoStopSeconds);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (autoStopInvalid) return;
    setRunning(true);
    setError(null);
    setSteps([]);
    const body = {
      ...(target.trim() ? { target: target.trim() } : {}),
      ...(branch.trim() ? { branch: branch.trim() } : {}),
      ...(name.trim() ? { name: name.trim() } : {}),
      ...(provider ? { provider } : {}),
      ...(size ? { size } : {}),
      ...(autoStopSeconds !== undefined ? { autoStopSeconds } : {}),
    };
    try {
      const r = await withProgress<UpResult>('/workspaces', body, (p) => setSteps((s) => (s.length && s[s.length - 1]!.step === p.step ? [...s.slice(0, -1), p] : [...s, p])));
      const w = r.workspace;
      setWorkspace(w);
      toast({ kind: 'ok', title: `${workspaceName(w)}: ${r.action.replace('-', ' ')}`, ...(r.notices.length ? { body: r.notices.join(' ') } : {}), href: `#/w/${enc(w.id)}` });
      props.onDone();
      location.hash = `#/w/${enc(w.id)}?agent=${enc(agent)}&new=1`;
    } catch (err) {
      setError(err as { message: string; hint?: string });
    } finally {
      setRunning(false);
    }
  };

  return (
    <form class="dialog-body form" onSubmit={submit}>
      <div class="field">
        <label for="l-target">Path or git URL</label>
        <input id="l-target" value={target} onInput={(e) => setTarget((e.target as HTMLInputElement).value)} placeholder="Git URL, or a path on the server" spellcheck={false} autocapitalize="off" />
        <p class="hint">Empty: a new empty workspace. A workspace id or name resumes it.</p>
      </div>
      <div class="grid2">
        <div class="field">
          <label for="l-branch">Branch</label>
          <input id="l-branch" value={branch} onInput={(e) => setBranch((e.target as HTMLInputElement).value)} placeholder="default" spellcheck={false} autocapitalize="off" />
        </div>
        <div class="field">
          <label for="l-name">Name</label>
          <input id="l-name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} placeholder="optional" spellcheck={false} autocapitalize="off" />
        </div>
        <div class="field">
          <label for="l-provider">Provider</label>
          <select id="l-provider" value={provider} onChange={(e) => (setProvider((e.target as HTMLSelectElement).value), setSize(''))} disabled={!providers}>
            <option value="">Default{providers?.[0] ? ` (${providers[0].name})` : ''}</option>
            {providers?.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name} ({p.type})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="l-size">Size</label>
          <select id="l-size" value={size} onChange={(e) => setSize((e.target as HTMLSelectElement).value)}>
            <option value="">Default{chosenType ? ` (${chosenType.defaultSize})` : ''}</option>
            {sizes.map(([n, s]) => (
              <option key={n} value={n}>
                {n} — {s.cpus} CPU, {s.memoryMb >= 1024 ? `${s.memoryMb / 1024} GB` : `${s.memoryMb} MB`}
              </option>
            ))}
          </select>
        </div>
        <AgentField id="l-agent" value={agent} onChange={setAgent} />
        <div class="field">
          <label for="l-autostop">Auto-stop after idle</label>
          <input
            id="l-autostop"
            value={autoStop}
            onInput={(e) => setAutoStop((e.target as HTMLInputElement).value)}
            placeholder="server default; e.g. 45m, 2h, 0 = never"
            aria-invalid={autoStopInvalid}
            aria-describedby="l-autostop-hint"
            spellcheck={false}
            autocapitalize="off"
          />
          <p class="hint" id="l-autostop-hint">
            {autoStopInvalid ? 'Use a number with s, m, h or d.' : 'Minutes unless a unit is given.'}
          </p>
        </div>
      </div>
      {(steps.length > 0 || running) && (
        <ol class="progress" aria-live="polite" aria-label="Launch progress">
          {steps.map((s, i) => (
            <li key={i} class={i === steps.length - 1 && running ? 'current' : 'done'}>
              <span>{s.step}</span>
              {s.detail && <span class="muted"> — {s.detail}</span>}
              {s.fraction !== undefined && <progress max={1} value={s.fraction} aria-label={`${s.step} progress`} />}
            </li>
          ))}
          {running && !steps.length && <li class="current">Asking the control plane…</li>}
        </ol>
      )}
      {error && (
        <div class="error-box" role="alert">
          <p>{error.message}</p>
          {error.hint && <p class="hint">{error.hint}</p>}
        </div>
      )}
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={props.onDone}>
          {running ? 'Hide (it goes on)' : 'Cancel'}
        </button>
        <button type="submit" class="btn primary" disabled={running || autoStopInvalid}>
          {running ? 'Launching…' : 'Launch'}
        </button>
      </div>
    </form>
  );
}
