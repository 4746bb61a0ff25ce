/**
 * A conversation: its events streamed (SSE over fetch, resumed from the last sequence number after a drop, each
 * event applied once), shown in a virtualised list, with the compose box, the queue and Interrupt.
 */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { del, enc, get, keepStreaming, post } from '../api';
import { Badge, Icon, Spinner } from '../components/ui';
import { filePath, ToolInput, toolSummary } from '../components/tool';
import { VirtualList } from '../components/VirtualList';
import { clock, tokens, usd } from '../format';
import { errorToast, upsertConversation, useStore } from '../store';
import type { AnyEvent, ConversationInfo, EventPayloads, QueuedMessage, WorkspaceInfo } from '../types';

type Row =
  | { kind: 'user'; key: string; text: string; time: string }
  | { kind: 'text'; key: string; text: string; time: string }
  | { kind: 'tool'; key: string; id: string; name: string; input: unknown; result?: { output: string; isError: boolean }; time: string }
  | { kind: 'approval'; key: string; approvalId: string; tool: string; input: unknown; decided?: { decision: 'allow' | 'deny'; by: string } }
  | { kind: 'turn'; key: string; data: EventPayloads['turn.completed'] }
  | { kind: 'error'; key: string; text: string }
  | { kind: 'meta'; key: string; text: string };

/** Turns events into rows, incrementally: a tool's result joins its call; approvals learn their decision. */
class RowBuilder {
  rows: Row[] = [];
  lastSeq = 0;
  queue = new Map<string, QueuedMessage>();
  private toolRow = new Map<string, number>();
  private approvalRow = new Map<string, number>();

  add(e: AnyEvent): void {
    this.lastSeq = e.seq;
    const key = String(e.seq);
    const push = (r: Row) => this.rows.push(r);
    switch (e.type) {
      case 'conversation.created':
        push({ kind: 'meta', key, text: `${e.data.agent}${e.data.model ? ` · ${e.data.model}` : ''} conversation started` });
        break;
      case 'message.queued':
        this.queue.set(e.data.queueId, { queueId: e.data.queueId, text: e.data.text, queuedAt: e.time });
        break;
      case 'message.cancelled':
        this.queue.delete(e.data.queueId);
        break;
      case 'message.sent':
        this.queue.delete(e.data.queueId);
        push({ kind: 'user', key, text: e.data.text, time: e.time });
        break;
      case 'assistant.text':
        push({ kind: 'text', key, text: e.data.text, time: e.time });
        break;
      case 'tool.called':
        this.toolRow.set(e.data.toolUseId, this.rows.length);
        push({ kind: 'tool', key, id: e.data.toolUseId, name: e.data.name, input: e.data.input, time: e.time });
        break;
      case 'tool.result': {
        const i = this.toolRow.get(e.data.toolUseId);
        const row = i === undefined ? undefined : this.rows[i];
        if (row && row.kind === 'tool') this.rows[i!] = { ...row, result: { output: e.data.output, isError: e.data.isError } };
        else push({ kind: 'tool', key, id: e.data.toolUseId, name: 'result', input: null, result: { output: e.data.output, isError: e.data.isError }, time: e.time });
        break;
      }
      case 'approval.requested':
        this.approvalRow.set(e.data.approvalId, this.rows.length);
        push({ kind: 'approval', key, approvalId: e.data.approvalId, tool: e.data.tool, input: e.data.input });
        break;
      case 'approval.decided': {
        const i = this.approvalRow.get(e.data.approvalId);
        const row = i === undefined ? undefined : this.rows[i];
        if (row && row.kind === 'approval') this.rows[i!] = { ...row, decided: { decision: e.data.decision, by: e.data.by } };
        break;
      }
      case 'turn.completed':
        push({ kind: 'turn', key, data: e.data });
        break;
      case 'turn.interrupted':
        push({ kind: 'meta', key, text: `Turn interrupted${e.data.reason ? `: ${e.data.reason}` : ''}` });
        break;
      case 'agent.exited':
        if (e.data.code) push({ kind: 'error', key, text: `The agent exited with code ${e.data.code}${e.data.signal ? ` (${e.data.signal})` : ''}.` });
        break;
      case 'tui.attached':
        push({ kind: 'meta', key, text: 'Someone opened the agent’s terminal UI; messages wait until they leave' });
        break;
      case 'tui.detached':
        push({ kind: 'meta', key, text: 'The terminal UI was closed' });
        break;
      case 'error':
        push({ kind: 'error', key, text: e.data.message });
        break;
      default:
        break;
    }
  }
}

/** Text with ``` fences as code blocks; the rest keeps its line breaks. */
function RichText(props: { text: string }) {
  const parts = props.text.split(/^```[^\n]*\n?/m);
  const out: ComponentChildren[] = [];
  parts.forEach((p, i) => {
    if (i % 2 === 1) out.push(<pre class="code" tabIndex={0} key={i}>{p.replace(/\n$/, '')}</pre>);
    else if (p.trim()) out.push(<p class="prose" key={i}>{inlineCode(p.replace(/^\n+|\n+$/g, ''))}</p>);
  });
  return <>{out}</>;
}

function inlineCode(s: string): ComponentChildren[] {
  return s.split(/(`[^`\n]+`)/).map((p, i) => (p.length > 2 && p.startsWith('`') && p.endsWith('`') ? <code key={i}>{p.slice(1, -1)}</code> : p));
}

const LONG_LINES = 12;
const LONG_CHARS = 1200;

function ToolRow(props: { row: Extract<Row, { kind: 'tool' }>; open: boolean; onToggle: () => void }) {
  const { row } = props;
  const out = row.result?.output ?? '';
  const lines = out.split('\n');
  const long = lines.length > LONG_LINES || out.length > LONG_CHARS;
  const shown = long && !props.open ? lines.slice(0, 6).join('\n').slice(0, 600) : out;
  const input = row.input as Record<string, unknown> | null;
  const isEdit = !!input && typeof input === 'object' && ('old_string' in input || 'oldString' in input || 'edits' in input || (typeof input.content === 'string' && !!filePath(input)));
  return (
    <div class={`ev tool${row.result?.isError ? ' failed' : ''}`}>
      <div class="tool-head">
        <span class="tool-name">{row.name}</span>
        <span class="tool-summary">{row.input === null ? '' : toolSummary(row.name, row.input)}</span>
        {!row.result && <span class="tool-running" aria-label="running" />}
      </div>
      {isEdit && <ToolInput name={row.name} input={row.input} max={props.open ? undefined : 40} />}
      {row.result && (out || row.result.isError) && (
        <div class="tool-result">
          <pre class={`code out${row.result.isError ? ' err' : ''}`} tabIndex={0}>{shown || (row.result.isError ? '(failed, no output)' : '')}</pre>
          {long && (
            <button type="button" class="link-btn" aria-expanded={props.open} onClick={props.onToggle}>
              {props.open ? 'Show less' : `Show all (${lines.length} lines)`}
            </button>
          )}
        </div>
      )}
    </div>
  );
}

function ApprovalRow(props: { row: Extract<Row, { kind: 'approval' }>; pending: boolean }) {
  const { row } = props;
  return (
    <div class="ev approval">
      <div class="tool-head">
        <Icon name="shield" />
        <strong>Approval {row.decided ? (row.decided.decision === 'allow' ? 'granted' : 'denied') : 'requested'}</strong>
        <span class="tool-summary">
          {row.tool}: {toolSummary(row.tool, row.input)}
        </span>
      </div>
      <ToolInput name={row.tool} input={row.input} max={40} />
      {row.decided ? <p class="muted small">by {row.decided.by}</p> : props.pending ? <ApprovalButtons id={row.approvalId} /> : null}
    </div>
  );
}

export function ApprovalButtons(props: { id: string; onDone?: () => void }) {
  const [busy, setBusy] = useState(false);
  const decide = async (decision: 'allow' | 'deny', remember = false) => {
    setBusy(true);
    try {
      await post(`/approvals/${enc(props.id)}`, { decision, ...(remember ? { remember: true } : {}) });
      props.onDone?.();
    } catch (e) {
      errorToast(e, 'The decision was not taken');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="approval-actions">
      <button type="button" class="btn primary" disabled={busy} onClick={() => decide('allow')}>
        Approve
      </button>
      <button type="button" class="btn" disabled={busy} onClick={() => decide('allow', true)}>
        Always allow
      </button>
      <button type="button" class="btn danger" disabled={busy} onClick={() => decide('deny')}>
        Deny
      </button>
    </div>
  );
}

export function ConversationView(props: { id: string; w: WorkspaceInfo }) {
  const { id } = props;
  const info = useStore((s) => s.conversations[id]);
  const pendingApprovals = useStore((s) => s.approvals);
  const [rows, setRows] = useState<Row[]>([]);
  const [queue, setQueue] = useState<QueuedMessage[]>([]);
  const [lastSeq, setLastSeq] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [streamState, setStreamState] = useState<'open' | 'retrying' | 'failed' | 'connecting'>('connecting');
  const [streamError, setStreamError] = useState<string | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const expanded = useRef(new Set<string>());
  const [, bump] = useState(0);
  const scrollToEnd = useRef<(() => void) | null>(null);
  const textarea = useRef<HTMLTextAreaElement>(null);

  const refreshInfo = useCallback(() => {
    get<ConversationInfo>(`/conversations/${enc(id)}`).then(upsertConversation, () => undefined);
  }, [id]);

  useEffect(() => {
    refreshInfo();
    const b = new RowBuilder();
    let buffered: AnyEvent[] = [];
    let frame = 0;
    let infoTimer: ReturnType<typeof setTimeout> | undefined;
    let gap = false;
    const flush = () => {
      frame = 0;
      let stateChanged = false;
      for (const e of buffered) {
        // Exactly once, in order: a resent event is skipped; a gap makes the stream reconnect from the hole.
        if (e.seq <= b.lastSeq) continue;
        if (e.seq !== b.lastSeq + 1) {
          gap = true;
          break;
        }
        b.add(e);
        if (e.type !== 'assistant.text' && e.type !== 'tool.called' && e.type !== 'tool.result') stateChanged = true;
      }
      buffered = [];
      setRows(b.rows.slice());
      setQueue(Array.from(b.queue.values()));
      setLastSeq(b.lastSeq);
      if (gap) {
        gap = false;
        restart();
      }
      if (stateChanged) {
        clearTimeout(infoTimer);
        infoTimer = setTimeout(refreshInfo, 250);
      }
    };
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(flush);
    };
    let stop = () => undefined as void;
    let stopped = false;
    /**
     * Where the server will not stream to this browser (a proxy that buffers, or a cookie session refused for
     * text/event-stream), the same events are read as JSON pages: the next page from lastSeq + 1, again and again.
     */
    const poll = async (alive: () => boolean) => {
      setStreamState('open');
      while (alive()) {
        try {
          const page = await get<AnyEvent[]>(`/conversations/${enc(id)}/events?from=${b.lastSeq + buffered.length + 1}&limit=1000`);
          if (!alive()) return;
          buffered.push(...page);
          schedule();
          setLoaded(true);
          setStreamState('open');
          if (page.length >= 1000) continue;
        } catch (e) {
          if (!alive()) return;
          const status = (e as { status?: number }).status;
          if (status === 401 || status === 404) {
            setStreamState('failed');
            setStreamError((e as Error).message);
            setLoaded(true);
            return;
          }
          setStreamState('retrying');
        }
        await new Promise((r) => setTimeout(r, document.hidden ? 10_000 : 1500));
      }
    };
    const open = () =>
      keepStreaming(
        () => `/conversations/${enc(id)}/events?from=${b.lastSeq + 1}`,
        (m) => {
          if (m.event !== 'event') return;
          try {
            buffered.push(JSON.parse(m.data) as AnyEvent);
          } catch {
            return;
          }
          schedule();
        },
        {
          onState: (s, err) => {
            if (s === 'failed' && err?.status === 403) {
              let alive = true;
              stop = () => void (alive = false);
              void poll(() => alive && !stopped);
              return;
            }
            setStreamState(s);
            setStreamError(err ? err.message : null);
            if (s === 'open') setLoaded(true);
            if (s === 'failed') setLoaded(true);
          },
        },
      );
    const restart = () => {
      stop();
      stop = open();
    };
    stop = open();
    return () => {
      stopped = true;
      stop();
      cancelAnimationFrame(frame);
      clearTimeout(infoTimer);
    };
  }, [id]);

  const state = info?.state ?? 'idle';
  const working = state === 'working' || state === 'waiting-approval';
  const pendingIds = useMemo(() => new Set(pendingApprovals.map((a) => a.approvalId)), [pendingApprovals]);
  // The queue from the event log; the control plane's copy fills in before the log has been read.
  const shownQueue = loaded ? queue : (info?.queue ?? []);

  const send = async (e?: Event) => {
    e?.preventDefault();
    const t = text.trim();
    if (!t) return;
    setSending(true);
    try {
      await post(`/conversations/${enc(id)}/messages`, { text: t });
      setText('');
      scrollToEnd.current?.();
    } catch (err) {
      errorToast(err, 'The message was not sent');
    } finally {
      setSending(false);
      textarea.current?.focus();
    }
  };

  const cancel = async (q: QueuedMessage, edit: boolean) => {
    try {
      await del(`/conversations/${enc(id)}/messages/${enc(q.queueId)}`);
      if (edit) {
        setText((cur) => (cur.trim() ? `${q.text}\n\n${cur}` : q.text));
        textarea.current?.focus();
      }
    } catch (err) {
      errorToast(err, edit ? 'It was already sent; nothing to edit' : 'Could not cancel that message');
    }
  };

  const interrupt = async () => {
    try {
      await post(`/conversations/${enc(id)}/interrupt`, {});
    } catch (err) {
      errorToast(err, 'Could not interrupt');
    }
  };

  const renderRow = (r: Row) => {
    switch (r.kind) {
      case 'user':
        return (
          <div class="ev user">
            <div class="bubble">
              <p class="prose">{r.text}</p>
            </div>
            <time class="muted small" dateTime={r.time}>
              {clock(r.time)}
            </time>
          </div>
        );
      case 'text':
        return (
          <div class="ev assistant">
            <RichText text={r.text} />
          </div>
        );
      case 'tool':
        return (
          <ToolRow
            row={r}
            open={expanded.current.has(r.key)}
            onToggle={() => {
              if (expanded.current.has(r.key)) expanded.current.delete(r.key);
              else expanded.current.add(r.key);
              bump((v) => v + 1);
            }}
          />
        );
      case 'approval':
        return <ApprovalRow row={r} pending={pendingIds.has(r.approvalId)} />;
      case 'turn':
        return (
          <div class={`ev turn${r.data.isError ? ' failed' : ''}`}>
            <span>{r.data.isError ? 'Turn failed' : 'Turn completed'}</span>
            <span class="muted small">
              {r.data.costUsd !== null ? usd(r.data.costUsd) + ' · ' : ''}
              {tokens(r.data.inputTokens)} in / {tokens(r.data.outputTokens)} out
              {r.data.durationMs ? ` · ${(r.data.durationMs / 1000).toFixed(1)}s` : ''}
            </span>
          </div>
        );
      case 'error':
        return (
          <div class="ev error" role="alert">
            {r.text}
          </div>
        );
      case 'meta':
        return <div class="ev meta">{r.text}</div>;
    }
  };

  const canSend = props.w.status === 'running';

  return (
    <div class="conversation" data-rows={rows.length} data-last-seq={lastSeq}>
      <div class="conv-head">
        <a class="icon-btn back only-narrow" href={`#/w/${enc(props.w.id)}`} aria-label="Back to conversations">
          <Icon name="back" />
        </a>
        <h2 class="conv-title">{info?.agent ?? 'Conversation'}</h2>
        <Badge status={state} />
        <span class="muted small">{info ? usd(info.costUsd) : ''}</span>
        {streamState === 'retrying' && <span class="conn">Reconnecting…</span>}
      </div>

      {!loaded ? (
        <div class="conv-loading">
          <Spinner label="Loading the conversation…" />
        </div>
      ) : streamState === 'failed' && rows.length === 0 ? (
        <div class="error-box" role="alert">
          {streamError ?? 'This conversation could not be read.'}
        </div>
      ) : (
        <VirtualList
          items={rows}
          itemKey={rowKey}
          render={renderRow}
          estimate={72}
          follow
          class="events"
          label="Conversation events"
          onAtBottomChange={setAtBottom}
          scrollToEndRef={scrollToEnd}
          footer={
            working ? (
              <div class="typing" role="status">
                <span aria-hidden="true" />
                <span aria-hidden="true" />
                <span aria-hidden="true" />
                <span class="sr-only">The agent is working</span>
              </div>
            ) : null
          }
        />
      )}
      {!atBottom && loaded && (
        <button type="button" class="btn jump" onClick={() => scrollToEnd.current?.()}>
          Jump to latest ↓
        </button>
      )}

      {shownQueue.length > 0 && (
        <ul class="queue" aria-label="Queued messages">
          {shownQueue.map((q) => (
            <li key={q.queueId} class="queued">
              <span class="queued-label">Queued</span>
              <span class="queued-text">{q.text}</span>
              <button type="button" class="btn small" onClick={() => cancel(q, true)}>
                Edit
              </button>
              <button type="button" class="btn small danger-ghost" onClick={() => cancel(q, false)}>
                Cancel
              </button>
            </li>
          ))}
        </ul>
      )}

      <form class="compose" onSubmit={send}>
        <label for="compose-text" class="sr-only">
          Message to the agent
        </label>
        <textarea
          id="compose-text"
          ref={textarea}
          rows={1}
          value={text}
          disabled={!canSend}
          placeholder={canSend ? (working ? 'Queue a message…' : 'Message the agent…') : 'Resume the workspace to send messages'}
          onInput={(e) => {
            const el = e.target as HTMLTextAreaElement;
            setText(el.value);
            el.style.height = 'auto';
            el.style.height = Math.min(el.scrollHeight, 200) + 'px';
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && matchMedia('(pointer: fine)').matches) {
              e.preventDefault();
              void send();
            }
          }}
        />
        {working && (
          <button type="button" class="btn danger-ghost" onClick={interrupt} aria-label="Interrupt the agent">
            <Icon name="stop" /> <span class="label-wide">Interrupt</span>
          </button>
        )}
        <button type="submit" class="btn primary" disabled={!canSend || sending || !text.trim()} aria-label={working ? 'Queue message' : 'Send message'}>
          <Icon name="send" />
        </button>
      </form>
    </div>
  );
}

const rowKey = (r: Row) => r.key;
