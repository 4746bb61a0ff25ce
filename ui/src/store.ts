/**
 * The app's shared state: who is logged in, the user's workspaces, conversations and pending approvals (kept live
 * by /api/v1/stream), and the toasts on screen. A tiny store: components read slices with useStore().
 */
import { useEffect, useState } from 'preact/hooks';
import { get, keepStreaming, type ApiError } from './api';
import type { AppNotification, Approval, ConversationInfo, Me, WorkspaceInfo } from './types';

export interface Toast {
  id: number;
  kind: 'info' | 'ok' | 'error' | 'warn';
  title: string;
  body?: string;
  href?: string;
}

export interface State {
  /** undefined: still asking; null: logged out. */
  me: Me | null | undefined;
  workspaces: WorkspaceInfo[] | null;
  conversations: Record<string, ConversationInfo>;
  approvals: Approval[];
  stream: 'connecting' | 'open' | 'retrying' | 'failed';
  toasts: Toast[];
}

let state: State = { me: undefined, workspaces: null, conversations: {}, approvals: [], stream: 'connecting', toasts: [] };
const listeners = new Set<() => void>();

export function getState(): State {
  return state;
}

export function setState(patch: Partial<State> | ((s: State) => Partial<State>)): void {
  state = { ...state, ...(typeof patch === 'function' ? patch(state) : patch) };
  for (const l of listeners) l();
}

export function useStore<T>(select: (s: State) => T): T {
  const [value, setValue] = useState(() => select(state));
  useEffect(() => {
    const check = () => setValue(() => select(state));
    listeners.add(check);
    check();
    return () => void listeners.delete(check);
    // The selector is expected to be stable in what it reads; re-subscribing on each render is not needed.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return value;
}

let toastId = 0;
export function toast(t: Omit<Toast, 'id'>, ms = 6000): void {
  const id = ++toastId;
  setState((s) => ({ toasts: [...s.toasts.slice(-3), { ...t, id }] }));
  if (ms > 0) setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  setState((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
}

export function errorToast(e: unknown, title = 'That did not work'): void {
  const err = e as ApiError;
  toast({ kind: 'error', title, body: [err.message, err.hint].filter(Boolean).join(' ') }, 9000);
}

export function upsertConversation(c: ConversationInfo): void {
  setState((s) => {
    const old = s.conversations[c.id];
    // Stream and fetch may cross: never go back to an older snapshot.
    if (old && old.lastSeq > c.lastSeq) return {};
    return { conversations: { ...s.conversations, [c.id]: c } };
  });
}

export function upsertConversations(list: ConversationInfo[]): void {
  setState((s) => {
    const next = { ...s.conversations };
    for (const c of list) {
      const old = next[c.id];
      if (!old || old.lastSeq <= c.lastSeq) next[c.id] = c;
    }
    return { conversations: next };
  });
}

const received = new WeakMap<WorkspaceInfo, number>();
function stamp<T extends WorkspaceInfo[] | WorkspaceInfo>(x: T): T {
  const now = Date.now();
  for (const w of Array.isArray(x) ? x : [x]) received.set(w, now);
  return x;
}

/** Uptime and cost now: the server sends them only with other changes, so a running workspace's are extrapolated. */
export function liveUsage(w: WorkspaceInfo, now = Date.now()): { uptimeSeconds: number; costUsd: number } {
  const at = received.get(w);
  if (w.status !== 'running' || at === undefined) return { uptimeSeconds: w.uptimeSeconds, costUsd: w.costUsd };
  const up = w.uptimeSeconds + Math.max(0, (now - at) / 1000);
  return { uptimeSeconds: up, costUsd: w.uptimeSeconds > 0 ? (w.costUsd * up) / w.uptimeSeconds : w.costUsd };
}

export function setWorkspaces(list: WorkspaceInfo[]): void {
  setState({ workspaces: stamp(list.filter((w) => w.status !== 'deleted')) });
}

export function setWorkspace(w: WorkspaceInfo): void {
  stamp(w);
  setState((s) => {
    const list = s.workspaces ?? [];
    const i = list.findIndex((x) => x.id === w.id);
    return { workspaces: i < 0 ? [w, ...list] : list.map((x) => (x.id === w.id ? w : x)) };
  });
}

const notificationListeners = new Set<(n: AppNotification) => void>();
export function onNotification(f: (n: AppNotification) => void): () => void {
  notificationListeners.add(f);
  return () => void notificationListeners.delete(f);
}

/**
 * Opens the dashboard stream. Until it answers (or if the server has none), the lists are fetched directly and
 * refreshed every few seconds.
 */
export function startLiveUpdates(): () => void {
  let poll: ReturnType<typeof setInterval> | undefined;
  const refresh = async () => {
    try {
      const [ws, ap] = await Promise.all([get<WorkspaceInfo[]>('/workspaces'), get<Approval[]>('/approvals')]);
      setWorkspaces(ws);
      setState({ approvals: ap });
    } catch {
      /* shown by the stream state */
    }
  };
  const startPolling = () => {
    if (poll) return;
    void refresh();
    poll = setInterval(refresh, 5000);
  };
  const stopPolling = () => {
    if (poll) clearInterval(poll);
    poll = undefined;
  };
  void refresh();
  const stop = keepStreaming(
    () => '/stream',
    (m) => {
      let data: unknown;
      try {
        data = JSON.parse(m.data);
      } catch {
        return;
      }
      if (m.event === 'workspaces') setWorkspaces(data as WorkspaceInfo[]);
      else if (m.event === 'conversation') upsertConversation(data as ConversationInfo);
      else if (m.event === 'approvals') setState({ approvals: data as Approval[] });
      else if (m.event === 'notification') for (const f of notificationListeners) f(data as AppNotification);
    },
    {
      accept: false,
      onState: (s) => {
        setState({ stream: s });
        if (s === 'open') stopPolling();
        else startPolling();
      },
    },
  );
  return () => {
    stop();
    stopPolling();
  };
}
