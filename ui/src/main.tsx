/** The web UI's entry: session check, the app shell (header, approvals banner, toasts) and the hash router. */
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, del, get, post, setCsrf, setUnauthorizedHandler } from './api';
import { Icon, Spinner, Toasts } from './components/ui';
import { useRoute } from './router';
import { getState, onNotification, setState, startLiveUpdates, toast, useStore } from './store';
import type { Me } from './types';
import { Dashboard } from './views/Dashboard';
import { Approvals } from './views/Approvals';
import { WorkspaceView } from './views/Workspace';
import { Settings } from './views/Settings';

async function loadMe(): Promise<void> {
  try {
    const me = await get<Me>('/me', { quiet401: true });
    setCsrf(me.csrfToken);
    setState({ me });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) setState({ me: null });
    else setState({ me: null });
  }
}

setUnauthorizedHandler(() => {
  if (getState().me) {
    setCsrf(null);
    setState({ me: null });
  }
});

function Login() {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await post<{ user: Me['user']; csrfToken: string }>('/auth/session', { token: token.trim() }, { quiet401: true });
      setCsrf(r.csrfToken);
      setToken('');
      await loadMe();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That token is not valid.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form class="card login-card" onSubmit={submit}>
        <h1>
          <img src="/icon.svg" alt="" width="32" height="32" /> claude-vm
        </h1>
        <p class="muted">Paste an API token to open a session in this browser. Get one with <code>claude-vm token create web</code>, or run <code>claude-vm web</code> for a login link.</p>
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autocomplete="current-password"
          spellcheck={false}
          placeholder="cvm_…"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          required
        />
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button class="btn primary block" type="submit" disabled={busy || !token.trim()}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}

function Header(props: { me: Me }) {
  const approvals = useStore((s) => s.approvals.length);
  const stream = useStore((s) => s.stream);
  const route = useRoute();
  const logout = async () => {
    try {
      await del('/auth/session');
    } catch {
      /* the cookie is gone either way */
    }
    setCsrf(null);
    setState({ me: null, workspaces: null, approvals: [], conversations: {} });
  };
  return (
    <header class="topbar">
      <a class="brand" href="#/" aria-label="claude-vm: workspaces">
        <img src="/icon.svg" alt="" width="28" height="28" />
        <span class="brand-name">claude-vm</span>
      </a>
      {stream === 'retrying' && (
        <span class="conn" role="status">
          Reconnecting…
        </span>
      )}
      <nav class="top-actions" aria-label="Main">
        <a href="#/approvals" class={`icon-btn${approvals ? ' attention' : ''}`} aria-current={route.name === 'approvals' ? 'page' : undefined} aria-label={`Approvals${approvals ? `: ${approvals} waiting` : ''}`}>
          <Icon name="shield" />
          {approvals > 0 && (
            <span class="pill" aria-hidden="true">
              {approvals}
            </span>
          )}
        </a>
        <a href="#/settings" class="icon-btn" aria-current={route.name === 'settings' ? 'page' : undefined} aria-label="Settings and notifications">
          <Icon name="gear" />
        </a>
        <button type="button" class="btn ghost small" onClick={logout} title={`Logged in as ${props.me.user.name}`}>
          Log out
        </button>
      </nav>
    </header>
  );
}

function ApprovalBanner() {
  const approvals = useStore((s) => s.approvals);
  const route = useRoute();
  if (!approvals.length || route.name === 'approvals') return null;
  const first = approvals[0]!;
  return (
    <div role="status" class="banner-wrap">
    <a class="approval-banner" href="#/approvals">
      <Icon name="shield" />
      <span>
        <strong>
          {approvals.length === 1 ? 'Approval needed' : `${approvals.length} approvals waiting`}
        </strong>
        <span class="muted-inv"> — {first.tool}</span>
      </span>
      <span class="banner-cta">Review</span>
    </a>
    </div>
  );
}

function Shell(props: { me: Me }) {
  const route = useRoute();
  useEffect(() => startLiveUpdates(), []);
  useEffect(
    () =>
      onNotification((n) => {
        // The conversation on screen already shows it.
        if (n.conversationId && location.hash.includes(`/c/${n.conversationId}`) && document.visibilityState === 'visible') return;
        const href = n.kind === 'approval.requested' ? '#/approvals' : n.workspaceId && n.conversationId ? `#/w/${n.workspaceId}/c/${n.conversationId}` : undefined;
        toast({ kind: n.kind === 'turn.failed' ? 'error' : n.kind === 'approval.requested' ? 'warn' : 'ok', title: n.title, body: n.body, ...(href ? { href } : {}) }, 8000);
      }),
    [],
  );
  let view;
  switch (route.name) {
    case 'dashboard':
      view = <Dashboard />;
      break;
    case 'approvals':
      view = <Approvals />;
      break;
    case 'settings':
      view = <Settings me={props.me} />;
      break;
    case 'workspace':
      view = <WorkspaceView key={route.id} route={route} />;
      break;
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <Header me={props.me} />
      <ApprovalBanner />
      <main id="main" tabIndex={-1} class={route.name === 'workspace' ? 'main workspace-main' : 'main'}>
        {view}
      </main>
    </>
  );
}

function App() {
  const me = useStore((s) => s.me);
  useEffect(() => void loadMe(), []);
  return (
    <>
      {me === undefined ? (
        <main class="boot" id="main">
          <Spinner label="Loading…" />
        </main>
      ) : me === null ? (
        <Login />
      ) : (
        <Shell me={me} />
      )}
      <Toasts />
    </>
  );
}

// A login link lands on "/?…" or "/#…"; nothing to do but render.
if (location.hash === '') history.replaceState(null, '', location.pathname + location.search + '#/');
const root = document.getElementById('app')!;
root.textContent = '';
render(<App />, root);
