/**
 * A terminal in the workspace (its tmux session) with xterm.js over the WebSocket /workspaces/{id}/terminal.
 * Frames are binary: one channel byte (0 stdin, 1 stdout, 2 stderr, 3 control JSON), then data. Loaded lazily:
 * this module and xterm.js are a separate chunk. Phones get a bar of keys their keyboard lacks.
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { useEffect, useRef, useState } from 'preact/hooks';
import { API, enc } from '../api';
import type { WorkspaceInfo } from '../types';

const encoder = new TextEncoder();

function frame(channel: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 1);
  out[0] = channel;
  out.set(data, 1);
  return out;
}

const KEYS: { label: string; name: string; seq: string }[] = [
  { label: 'Esc', name: 'Esc', seq: '\x1b' },
  { label: 'Tab', name: 'Tab', seq: '\t' },
  { label: '←', name: 'Left arrow', seq: '\x1b[D' },
  { label: '↑', name: 'Up arrow', seq: '\x1b[A' },
  { label: '↓', name: 'Down arrow', seq: '\x1b[B' },
  { label: '→', name: 'Right arrow', seq: '\x1b[C' },
  { label: '|', name: 'Pipe', seq: '|' },
  { label: '/', name: 'Slash', seq: '/' },
  { label: '-', name: 'Dash', seq: '-' },
];

/** Ctrl+key as the terminal sends it: letters and a few symbols map to control codes. */
function withCtrl(s: string): string {
  if (s.length !== 1) return s;
  const c = s.toUpperCase().charCodeAt(0);
  if (c >= 64 && c <= 95) return String.fromCharCode(c - 64);
  if (s === ' ') return '\x00';
  if (s === '?') return '\x7f';
  return s;
}

function theme() {
  const dark = matchMedia('(prefers-color-scheme: dark)').matches;
  return dark
    ? { background: '#0c0e12', foreground: '#e6e8ee', cursor: '#8fb4ff', selectionBackground: '#33415f' }
    : { background: '#ffffff', foreground: '#1b1e25', cursor: '#2f5bd3', selectionBackground: '#c9d7fb' };
}

export default function TerminalView(props: { w: WorkspaceInfo }) {
  const host = useRef<HTMLDivElement>(null);
  const ctrl = useRef(false);
  const [ctrlOn, setCtrlOn] = useState(false);
  const [status, setStatus] = useState<'connecting' | 'open' | 'closed'>('connecting');
  const [message, setMessage] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const sendRef = useRef<(s: string) => void>(() => undefined);
  const termRef = useRef<Terminal | null>(null);

  useEffect(() => {
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
      fontSize: matchMedia('(max-width: 600px)').matches ? 12 : 14,
      theme: theme(),
      scrollback: 5000,
      // Programs pick their own colours (bright green on white…): xterm.js adjusts them to stay readable.
      minimumContrastRatio: 4.5,
      allowProposedApi: false,
    });
    termRef.current = term;
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    try {
      fit.fit();
    } catch {
      /* not laid out yet */
    }
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${proto}://${location.host}${API}/workspaces/${enc(props.w.id)}/terminal?rows=${term.rows}&cols=${term.cols}`);
    ws.binaryType = 'arraybuffer';
    setStatus('connecting');
    setMessage(null);
    const decoder = new TextDecoder();

    const send = (s: string) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame(0, encoder.encode(s)));
    };
    sendRef.current = send;
    const resize = () => {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame(3, encoder.encode(JSON.stringify({ resize: { rows: term.rows, cols: term.cols } }))));
    };

    ws.onopen = () => {
      setStatus('open');
      resize();
      term.focus();
    };
    ws.onmessage = (e) => {
      const data = new Uint8Array(e.data as ArrayBuffer);
      if (!data.length) return;
      const channel = data[0];
      const body = data.subarray(1);
      if (channel === 1 || channel === 2) term.write(body);
      else if (channel === 3) {
        try {
          const c = JSON.parse(decoder.decode(body)) as { exit?: number; error?: unknown };
          if (c.exit !== undefined) setMessage(`The shell exited (${c.exit}).`);
          if (c.error !== undefined) setMessage(typeof c.error === 'string' ? c.error : ((c.error as { message?: string }).message ?? JSON.stringify(c.error)));
        } catch {
          /* ignore a malformed control frame */
        }
      }
    };
    ws.onclose = (e) => {
      setStatus('closed');
      setMessage((m) => m ?? (e.code === 1000 ? 'The terminal closed.' : `The connection closed${e.reason ? `: ${e.reason}` : ''}.`));
    };

    const onData = term.onData((d) => {
      if (ctrl.current) {
        ctrl.current = false;
        setCtrlOn(false);
        send(withCtrl(d));
      } else send(d);
    });
    const onResize = term.onResize(() => resize());
    const ro = new ResizeObserver(() => {
      try {
        fit.fit();
      } catch {
        /* hidden */
      }
    });
    ro.observe(host.current!);
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const onScheme = () => (term.options.theme = theme());
    mq.addEventListener('change', onScheme);

    return () => {
      mq.removeEventListener('change', onScheme);
      ro.disconnect();
      onData.dispose();
      onResize.dispose();
      ws.close();
      term.dispose();
      termRef.current = null;
    };
  }, [props.w.id, attempt]);

  const key = (seq: string) => {
    sendRef.current(seq);
    termRef.current?.focus();
  };

  return (
    <div class="terminal-wrap">
      {status !== 'open' && (
        <div class="term-status" role="status">
          {status === 'connecting' ? 'Connecting…' : message}
          {status === 'closed' && (
            <button type="button" class="btn small" onClick={() => setAttempt((a) => a + 1)}>
              Reconnect
            </button>
          )}
        </div>
      )}
      <div class="terminal" ref={host} />
      <div class="extra-keys" role="toolbar" aria-label="Extra keys">
        <button
          type="button"
          class={ctrlOn ? 'key on' : 'key'}
          aria-pressed={ctrlOn}
          aria-label="Ctrl (applies to the next key)"
          onClick={() => {
            ctrl.current = !ctrl.current;
            setCtrlOn(ctrl.current);
            termRef.current?.focus();
          }}
        >
          Ctrl
        </button>
        {KEYS.map((k) => (
          <button
            key={k.label}
            type="button"
            class="key"
            aria-label={k.name}
            onClick={() => {
              if (ctrl.current && k.seq.length === 1) {
                ctrl.current = false;
                setCtrlOn(false);
                key(withCtrl(k.seq));
              } else key(k.seq);
            }}
          >
            {k.label}
          </button>
        ))}
      </div>
    </div>
  );
}
