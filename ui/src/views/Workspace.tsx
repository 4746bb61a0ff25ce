/** One workspace: header with its state and actions, then tabs: Chat (conversations), Changes, Files, Terminal. */
import type { FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { enc, get, post, withProgress } from '../api';
import { AgentField, Badge, ErrorBox, Icon, Spinner, Tabs } from '../components/ui';
import { ago, usd, workspaceName } from '../format';
import type { Route } from '../router';
import { errorToast, setWorkspace, upsertConversation, upsertConversations, useStore } from '../store';
import { AGENT_NAMES, type ConversationInfo, type UpResult, type WorkspaceInfo } from '../types';
import { ConversationView } from './Conversation';
import { ChangesView } from './Changes';
import { FilesView } from './Files';

/** xterm.js is big: the terminal is a separate chunk, loaded the first time the tab opens. */
function LazyTerminal(props: { w: WorkspaceInfo }) {
  const [View, setView] = useState<FunctionComponent<{ w: WorkspaceInfo }> | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    import('./Terminal').then((m) => setView(() => m.default), setError);
  }, []);
  if (error) return <ErrorBox error={error} />;
  return View ? <View w={props.w} /> : <Spinner label="Loading the terminal…" />;
}

type WsRoute = Extract<Route, { name: 'workspace' }>;

export function WorkspaceView(props: { route: WsRoute }) {
  const { id, tab, conversation } = props.route;
  const fromList = useStore((s) => s.workspaces?.find((w) => w.id === id || w.name === id));
  const [fetched, setFetched] = useState<WorkspaceInfo | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [starting, setStarting] = useState<string | null>(null);
  const w = fromList ?? fetched;

  useEffect(() => {
    if (fromList) return;
    get<WorkspaceInfo>(`/workspaces/${enc(id)}`).then(setFetched, setError);
  }, [id, !!fromList]);

  if (!w) return error ? <ErrorBox error={error} /> : <Spinner label="Loading workspace…" />;
  const base = `#/w/${enc(w.id)}`;
  const running = w.status === 'running';

  const start = async () => {
    setStarting('Starting…');
    try {
      const r = await withProgress<UpResult>(`/workspaces/${enc(w.id)}/start`, {}, (p) => setStarting(p.step + (p.detail ? ` — ${p.detail}` : '')));
      setWorkspace(r.workspace);
    } catch (e) {
      errorToast(e, 'Could not start the workspace');
    } finally {
      setStarting(null);
    }
  };

  return (
    <div class={`ws-view${conversation ? ' has-conversation' : ''}`}>
      <header class="ws-head">
        <a class="icon-btn back" href="#/" aria-label="Back to workspaces">
          <Icon name="back" />
        </a>
        <div class="ws-head-text">
          <h1>{workspaceName(w)}</h1>
          <p class="muted small">
            {w.provider} · {w.size} · {usd(w.costUsd)} · active {ago(w.lastActivityAt ?? w.updatedAt)}
          </p>
        </div>
        <Badge status={w.status} />
      </header>
      {!running && (
        <div class="notice" role="status">
          {starting ? (
            <Spinner label={starting} />
          ) : (
            <>
              <span>
                This workspace is {w.status}. {w.statusReason ?? ''} Conversations can still be read; chat, files and the terminal need it running.
              </span>
              {(w.status === 'stopped' || w.status === 'error') && (
                <button type="button" class="btn primary" onClick={start}>
                  <Icon name="play" /> Resume
                </button>
              )}
            </>
          )}
        </div>
      )}
      <Tabs
        label="Workspace sections"
        current={tab}
        tabs={[
          { id: 'chat', label: 'Chat', href: base },
          { id: 'changes', label: 'Changes', href: `${base}/changes` },
          { id: 'files', label: 'Files', href: `${base}/files` },
          { id: 'terminal', label: 'Terminal', href: `${base}/terminal` },
        ]}
      />
      <div class="ws-body">
        {tab === 'chat' && <ChatTab w={w} conversation={conversation} />}
        {tab === 'changes' && <ChangesView w={w} />}
        {tab === 'files' && <FilesView w={w} />}
        {tab === 'terminal' &&
          (running ? (
            <LazyTerminal w={w} />
          ) : (
            <p class="muted pad">The terminal needs the workspace running.</p>
          ))}
      </div>
    </div>
  );
}

function ChatTab(props: { w: WorkspaceInfo; conversation?: string }) {
  const { w } = props;
  const all = useStore((s) => s.conversations);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const query = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const [showNew, setShowNew] = useState(query.get('new') === '1');

  const load = () =>
    get<ConversationInfo[]>(`/conversations?workspace=${enc(w.id)}`).then(
      (list) => {
        upsertConversations(list);
        setLoaded(true);
        setError(null);
      },
      (e) => {
        setError(e);
        setLoaded(true);
      },
    );
  useEffect(() => {
    void load();
    // The dashboard stream keeps them fresh; a slow poll covers a server without it.
    const t = setInterval(load, 30_000);
    return () => clearInterval(t);
  }, [w.id]);

  const list = Object.values(all)
    .filter((c) => c.workspaceId === w.id)
    .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));

  return (
    <div class="chat-layout">
      <aside class="conv-list" aria-label="Conversations">
        <div class="conv-list-head">
          <h2>Conversations</h2>
          <button type="button" class="btn primary small" onClick={() => setShowNew((v) => !v)} aria-expanded={showNew} disabled={w.status !== 'running'}>
            <Icon name="plus" /> New chat
          </button>
        </div>
        {showNew && <NewChat w={w} agent={query.get('agent') ?? 'claude'} onDone={() => setShowNew(false)} />}
        {!loaded ? (
          <Spinner label="Loading conversations…" />
        ) : error ? (
          <ErrorBox error={error} onRetry={load} />
        ) : list.length === 0 ? (
          <p class="muted pad">No conversations yet.{w.status === 'running' ? ' Start one with New chat.' : ''}</p>
        ) : (
          <ul class="conv-items">
            {list.map((c) => (
              <li key={c.id}>
                <a href={`#/w/${enc(w.id)}/c/${enc(c.id)}`} class={c.id === props.conversation ? 'conv-item active' : 'conv-item'} aria-current={c.id === props.conversation ? 'page' : undefined}>
                  <span class="conv-item-top">
                    <strong>{c.agent}</strong>
                    <Badge status={c.state} />
                  </span>
                  <span class="conv-last">{c.lastMessage ?? 'No messages yet'}</span>
                  <span class="muted small">
                    {ago(c.updatedAt)} · {usd(c.costUsd)}
                    {c.queue.length ? ` · ${c.queue.length} queued` : ''}
                  </span>
                </a>
              </li>
            ))}
          </ul>
        )}
      </aside>
      <section class="conv-pane" aria-label="Conversation">
        {props.conversation ? (
          <ConversationView key={props.conversation} id={props.conversation} w={w} />
        ) : (
          <p class="muted pad conv-placeholder">Choose a conversation, or start a new chat.</p>
        )}
      </section>
    </div>
  );
}

function NewChat(props: { w: WorkspaceInfo; agent: string; onDone: () => void }) {
  const [agent, setAgent] = useState(AGENT_NAMES.includes(props.agent as never) ? props.agent : 'claude');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const c = await post<ConversationInfo>('/conversations', { workspace: props.w.id, agent, ...(message.trim() ? { message: message.trim() } : {}) });
      upsertConversation(c);
      props.onDone();
      location.hash = `#/w/${enc(props.w.id)}/c/${enc(c.id)}`;
    } catch (err) {
      errorToast(err, 'Could not start the conversation');
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="new-chat card" onSubmit={submit}>
      <AgentField id="nc-agent" value={agent} onChange={setAgent} />
      <div class="field">
        <label for="nc-message">First message</label>
        <textarea id="nc-message" rows={3} value={message} onInput={(e) => setMessage((e.target as HTMLTextAreaElement).value)} placeholder="What should the agent do?" />
      </div>
      <div class="row-end">
        <button type="button" class="btn" onClick={props.onDone}>
          Cancel
        </button>
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Starting…' : 'Start chat'}
        </button>
      </div>
    </form>
  );
}
