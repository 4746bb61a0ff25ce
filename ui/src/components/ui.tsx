/** Shared pieces: modal dialog, confirmation, agent picker, status badge, toasts, spinner, tabs. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { dismissToast, useStore } from '../store';
import { AGENT_NAMES, type WorkspaceStatus, type ConversationState } from '../types';

export function Dialog(props: { open: boolean; title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'dialog wide' : 'dialog'}
      aria-label={props.title}
      onClose={props.onClose}
      onClick={(e) => {
        // A click on the backdrop (the dialog element itself, outside its box) closes it.
        if (e.target === ref.current) props.onClose();
      }}
    >
      {props.open && (
        <div class="dialog-box">
          <header class="dialog-head">
            <h2>{props.title}</h2>
            <button type="button" class="icon-btn" aria-label="Close" onClick={props.onClose}>
              <Icon name="close" />
            </button>
          </header>
          {props.children}
        </div>
      )}
    </dialog>
  );
}

export function Confirm(props: {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void | Promise<void>;
  onClose: () => void;
  children?: ComponentChildren;
}) {
  const [busy, setBusy] = useState(false);
  return (
    <Dialog open={props.open} title={props.title} onClose={props.onClose}>
      <div class="dialog-body">{props.children}</div>
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? 'btn danger' : 'btn primary'}
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            try {
              await props.onConfirm();
            } finally {
              setBusy(false);
            }
          }}
        >
          {busy ? 'Working…' : props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

const STATUS_TONE: Record<string, string> = {
  running: 'ok',
  idle: 'ok',
  creating: 'busy',
  starting: 'busy',
  stopping: 'busy',
  deleting: 'busy',
  working: 'busy',
  stopped: 'muted',
  deleted: 'muted',
  tui: 'info',
  'waiting-approval': 'warn',
  error: 'bad',
  failed: 'bad',
};

/** The agent picker of the launch form and the new-chat form. */
export function AgentField(props: { id: string; value: string; onChange: (agent: string) => void }) {
  return (
    <div class="field">
      <label for={props.id}>Agent</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {AGENT_NAMES.map((a) => (
          <option key={a} value={a}>
            {a}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Badge(props: { status: WorkspaceStatus | ConversationState | string; label?: string }) {
  const tone = STATUS_TONE[props.status] ?? 'muted';
  return (
    <span class={`badge ${tone}`}>
      <span class="dot" aria-hidden="true" />
      {props.label ?? props.status.replace('-', ' ')}
    </span>
  );
}

export function Spinner(props: { label?: string }) {
  return (
    <span class="spinner" role="status">
      <span class="spin" aria-hidden="true" />
      <span class={props.label ? '' : 'sr-only'}>{props.label ?? 'Loading'}</span>
    </span>
  );
}

export function Toasts() {
  const toasts = useStore((s) => s.toasts);
  return (
    <div class="toasts" aria-live="polite" aria-relevant="additions">
      {toasts.map((t) => (
        <div key={t.id} class={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          <div class="toast-text">
            {t.href ? (
              <a href={t.href} onClick={() => dismissToast(t.id)}>
                <strong>{t.title}</strong>
              </a>
            ) : (
              <strong>{t.title}</strong>
            )}
            {t.body && <p>{t.body}</p>}
          </div>
          <button type="button" class="icon-btn" aria-label="Dismiss notification" onClick={() => dismissToast(t.id)}>
            <Icon name="close" />
          </button>
        </div>
      ))}
    </div>
  );
}

export function Tabs<T extends string>(props: { label: string; tabs: { id: T; label: string; href: string; badge?: number }[]; current: T }) {
  return (
    <nav class="tabs" aria-label={props.label}>
      {props.tabs.map((t) => (
        <a key={t.id} href={t.href} class={t.id === props.current ? 'tab active' : 'tab'} aria-current={t.id === props.current ? 'page' : undefined}>
          {t.label}
          {t.badge ? <span class="count">{t.badge}</span> : null}
        </a>
      ))}
    </nav>
  );
}

export function ErrorBox(props: { error: unknown; onRetry?: () => void }) {
  const e = props.error as { message?: string; hint?: string };
  return (
    <div class="error-box" role="alert">
      <p>{e?.message ?? String(props.error)}</p>
      {e?.hint && <p class="hint">{e.hint}</p>}
      {props.onRetry && (
        <button type="button" class="btn" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

const PATHS: Record<string, string> = {
  close: 'M6 6l12 12M18 6L6 18',
  back: 'M15 5l-7 7 7 7',
  plus: 'M12 5v14M5 12h14',
  stop: 'M7 7h10v10H7z',
  play: 'M8 5l11 7-11 7z',
  trash: 'M5 7h14M10 7V5h4v2M7 7l1 12h8l1-12',
  bell: 'M6 16V11a6 6 0 0112 0v5l2 2H4zM10 20a2 2 0 004 0',
  gear: 'M12 9a3 3 0 100 6 3 3 0 000-6zM4 12h2M18 12h2M12 4v2M12 18v2M6.3 6.3l1.4 1.4M16.3 16.3l1.4 1.4M6.3 17.7l1.4-1.4M16.3 7.7l1.4-1.4',
  shield: 'M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z',
  send: 'M4 12l16-8-6 16-2-6z',
  chevron: 'M9 6l6 6-6 6',
  folder: 'M3 7h6l2 2h10v9H3z',
  file: 'M6 3h8l4 4v14H6zM14 3v4h4',
  up: 'M12 19V5M5 12l7-7 7 7',
  download: 'M12 4v12M6 10l6 6 6-6M5 20h14',
  upload: 'M12 20V8M6 14l6-6 6 6M5 4h14',
  refresh: 'M20 12a8 8 0 11-2.3-5.7M20 4v5h-5',
};

export function Icon(props: { name: keyof typeof PATHS | string; size?: number }) {
  const s = props.size ?? 20;
  return (
    <svg class="icon" width={s} height={s} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={PATHS[props.name] ?? ''} fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}

/** Refreshes a component every `ms` (for "5 min ago" and running uptimes). */
export function useNow(ms = 30_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
