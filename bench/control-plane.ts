/**
 * Control-plane scale (the issue: "one control-plane process, N simulated daemons speaking the real tunnel protocol
 * and publishing events, and M SSE/WebSocket viewers; report events/s, p99 delivery latency and RSS").
 * Goals: 1,000 daemons and 5,000 viewers, ≥ 20,000 events/s, 0 lost, < 300 MB.
 *
 * Run: `npm run build && node dist/bench/control-plane.js [flags]`   (no Docker needed; several minutes at full size)
 *   --daemons 1000 --viewers 5000 --rate 20000 (events/s, all daemons together) --duration 20 (s)
 *   --payload 100 (bytes of assistant text)   --daemon-workers 2 --viewer-workers 2 (load-generator processes)
 *   --drain 30 (s to wait for acks and deliveries after publishing)   --warmup 3 (s left out of latency percentiles)
 *   --fallback auto|none|NxM@R   smaller sizes when one is not sustained (auto: the same N and M at 60 % of the
 *                                rate achieved, up to 3 steps; NxM@R: that one size)
 *   --no-baseline   skip the bare ws + SSE fan-out server      --only cp|bare   run one side only
 *   --cpu-prof      profile the server (V8 profiler through its inspector) over publish + drain; print the top costs
 *   Flags also read from env: BENCH_DAEMONS, BENCH_VIEWERS, BENCH_RATE, BENCH_DURATION, BENCH_PAYLOAD, BENCH_DRAIN, …
 *   BENCH_SERVER_BIN=/path/to/bin/claude-vm.js runs another build's server (a patched copy, to measure a fix).
 *
 * How: `claude-vm server --listen 127.0.0.1:0` runs as its own process in a temp CLAUDE_VM_HOME (its RSS and CPU are
 * read from /proc). This process opens the same SQLite file (WAL) and inserts N running workspaces on a `local`
 * provider, each with a tunnel token. Worker processes (this file again, CVM_BENCH_ROLE=daemons|viewers) open N tunnel
 * WebSockets (hello with one conversation → welcome; the server records the conversation rows itself, checked) and
 * M SSE streams (`/api/v1/conversations/<id>/events?from=1`, M/N per conversation). Daemons publish `assistant.text`
 * events round-robin at the aggregate rate, open loop, one frame per event like a streaming agent, with the send
 * time in the text, and time their acks; viewers check every seq arrives exactly once and in order, and time delivery.
 * Every acknowledged event is checked to be in the server's store. The baseline (CVM_BENCH_ROLE=bare) is a plain node
 * http + ws server speaking the same two protocols with nothing behind them (no store, auth or Hono): what this
 * machine and this load generator can do at all, measured in the same run. Tests never assert on these numbers.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type ServerResponse } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import type { AnyEvent, ConversationInfo } from '../src/protocol/events.js';
import type { DaemonMessage, ServerMessage } from '../src/protocol/tunnel.js';
import { TUNNEL_PATH } from '../src/protocol/tunnel.js';
import { openSqlite, type Db } from '../src/store/db.js';
import { StateStore } from '../src/store/state.js';
import { AuthStore } from '../src/store/auth.js';
import { SecretBox } from '../src/store/secrets.js';

const SELF = fileURLToPath(import.meta.url);
const REPO = resolve(dirname(SELF), '../..');
/** The CLI that runs the server; BENCH_SERVER_BIN points at another build (a patched copy, to try a fix). */
const BIN = process.env.BENCH_SERVER_BIN || join(REPO, 'bin', 'claude-vm.js');

/** Wall-clock milliseconds with sub-millisecond resolution; comparable across processes on one machine. */
const wallNow = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------- histogram

/** Log buckets of 2 % from 0.01 ms to minutes: small enough to ship between processes, exact enough for p99. */
const BUCKETS = 1024;
const bucketOf = (ms: number) => Math.min(BUCKETS - 1, Math.max(0, Math.floor(Math.log1p(Math.max(0, ms) * 100) / Math.log(1.02))));
const bucketValue = (i: number) => (Math.pow(1.02, i + 1) - 1) / 100;
function percentile(h: ArrayLike<number>, p: number): number {
  let total = 0;
  for (let i = 0; i < h.length; i++) total += h[i]!;
  if (!total) return NaN;
  let want = Math.ceil((total * p) / 100);
  for (let i = 0; i < h.length; i++) if ((want -= h[i]!) <= 0) return bucketValue(i);
  return bucketValue(h.length - 1);
}
function merge(hs: number[][]): number[] {
  const out = new Array<number>(BUCKETS).fill(0);
  for (const h of hs) for (let i = 0; i < BUCKETS; i++) out[i]! += h[i] ?? 0;
  return out;
}

/** A worker's own load while publishing: if its loop is saturated, the generator (not the server) sets the pace. */
function loadMeter() {
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const cpu = process.cpuUsage(cpu0);
    return { elu, cpu: (cpu.user + cpu.system) / 1000 / (performance.now() - t0) };
  };
}
type Load = ReturnType<ReturnType<typeof loadMeter>>;

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

// ------------------------------------------------------------------------------------------- worker: daemons

interface DaemonSpec {
  workspaceId: string;
  token: string;
  conversationId: string;
}

interface DaemonStats {
  connectFailures: string[];
  sent: number;
  acked: number;
  lastSeq: Record<string, number>;
  ackedBy: Record<string, number>;
  ackHist: number[];
  lastAckAt: number;
  /** How late the generator sent, against its schedule (ms): shows whether it kept up. */
  lagP99: number;
  lagMax: number;
  maxBuffered: number;
  protocolErrors: number;
  closedDuringRun: number;
  load: Load;
}

class SimDaemon {
  ws!: WebSocket;
  seq = 0;
  acked = 0;
  readonly sendTimes: number[] = [];
  outbox: AnyEvent[] = [];
  welcomed = false;

  constructor(readonly spec: DaemonSpec) {}
}

async function daemonsWorker(): Promise<void> {
  const daemons: SimDaemon[] = [];
  const ackHist = new Array<number>(BUCKETS).fill(0);
  const lagHist = new Array<number>(BUCKETS).fill(0);
  let lagMax = 0;
  let lastAckAt = 0;
  let protocolErrors = 0;
  let closedDuringRun = 0;
  let maxBuffered = 0;
  let meter: (() => Load) | undefined;
  let load: Load = { elu: 0, cpu: 0 };
  const failures: string[] = [];
  let sending: Promise<void> = Promise.resolve();

  const connect = (url: string, d: SimDaemon) =>
    new Promise<void>((done) => {
      const ws = new WebSocket(url + TUNNEL_PATH, { headers: { Authorization: `Bearer ${d.spec.token}` }, perMessageDeflate: false, handshakeTimeout: 60_000 });
      d.ws = ws;
      const fail = (why: string) => {
        if (!d.welcomed) failures.push(`${d.spec.workspaceId}: ${why}`), done();
      };
      ws.on('unexpected-response', (_q, res) => (fail(`HTTP ${res.statusCode}`), ws.terminate()));
      ws.on('error', (e) => fail(e.message));
      ws.on('close', (code) => (d.welcomed ? closedDuringRun++ : fail(`closed ${code}`)));
      ws.on('open', () => {
        const t = new Date().toISOString();
        const info: ConversationInfo = {
          id: d.spec.conversationId, workspaceId: d.spec.workspaceId, agent: 'claude', model: null, state: 'idle', sessionId: null,
          lastSeq: 0, queue: [], costUsd: 0, lastMessage: null, createdAt: t, updatedAt: t,
        };
        const hello: DaemonMessage = { t: 'hello', workspaceId: d.spec.workspaceId, version: 'bench', conversations: [info] };
        ws.send(JSON.stringify(hello));
      });
      ws.on('message', (data) => {
        const now = wallNow();
        let m: ServerMessage;
        try {
          m = JSON.parse(String(data)) as ServerMessage;
        } catch {
          protocolErrors++;
          return;
        }
        if (m.t === 'welcome') {
          if (Object.keys(m.acked).length) protocolErrors++; // a fresh database has nothing stored
          d.welcomed = true;
          done();
        } else if (m.t === 'ack') {
          for (const [c, seq] of Object.entries(m.acked)) {
            if (c !== d.spec.conversationId || seq < d.acked || seq > d.seq) {
              protocolErrors++;
              continue;
            }
            for (let s = d.acked + 1; s <= seq; s++) ackHist[bucketOf(now - d.sendTimes[s - 1]!)]!++;
            d.acked = seq;
            lastAckAt = now;
          }
        } else if (m.t === 'req') {
          const res: DaemonMessage = { t: 'res', id: m.id, error: { message: 'bench daemon answers no requests' } };
          ws.send(JSON.stringify(res));
        }
      });
    });

  const pad = (n: number) => (n > 0 ? ' ' + 'x'.repeat(n - 1) : '');

  /** Open loop: event j of this worker is due at t0 + j/rate and goes to daemon j mod n. */
  const publish = (t0: number, rate: number, durationMs: number, payload: number) =>
    new Promise<void>((done) => {
      const total = Math.floor((rate * durationMs) / 1000);
      const filler = pad(Math.max(0, payload - 24));
      let j = 0;
      const touched = new Set<SimDaemon>();
      const tick = () => {
        const now = wallNow();
        const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000));
        const time = new Date(now).toISOString();
        for (; j < due; j++) {
          const d = daemons[j % daemons.length]!;
          const lag = now - (t0 + (j * 1000) / rate);
          lagHist[bucketOf(lag)]!++;
          if (lag > lagMax) lagMax = lag;
          const seq = ++d.seq;
          d.sendTimes.push(now);
          d.outbox.push({ seq, time, conversationId: d.spec.conversationId, type: 'assistant.text', data: { text: `t:${now.toFixed(3)}${filler}` } });
          touched.add(d);
        }
        for (const d of touched) {
          const m: DaemonMessage = { t: 'events', events: d.outbox };
          d.outbox = [];
          if (d.ws.readyState === WebSocket.OPEN) d.ws.send(JSON.stringify(m));
          if (d.ws.bufferedAmount > maxBuffered) maxBuffered = d.ws.bufferedAmount;
        }
        touched.clear();
        if (j >= total) {
          clearInterval(timer);
          done();
        }
      };
      let timer: NodeJS.Timeout;
      setTimeout(() => {
        meter = loadMeter();
        timer = setInterval(tick, 1);
      }, Math.max(0, t0 - wallNow()));
    });

  process.on('message', (msg: { cmd: string; [k: string]: unknown }) => {
    void (async () => {
      if (msg.cmd === 'connect') {
        const t = performance.now();
        for (const s of msg.daemons as DaemonSpec[]) daemons.push(new SimDaemon(s));
        await pool(daemons, msg.concurrency as number, (d) => connect(msg.url as string, d));
        process.send!({ ev: 'connected', ok: daemons.filter((d) => d.welcomed).length, failures: failures.slice(0, 5), failed: failures.length, ms: performance.now() - t });
      } else if (msg.cmd === 'start') {
        sending = publish(msg.t0 as number, msg.rate as number, msg.durationMs as number, msg.payload as number).then(() => {
          load = meter!();
          process.send!({ ev: 'sent' });
        });
      } else if (msg.cmd === 'drain') {
        await sending;
        const until = wallNow() + (msg.timeoutMs as number);
        while (daemons.some((d) => d.acked < d.seq) && wallNow() < until) await sleep(20);
        const stats: DaemonStats = {
          connectFailures: failures, sent: daemons.reduce((n, d) => n + d.seq, 0), acked: daemons.reduce((n, d) => n + d.acked, 0),
          lastSeq: Object.fromEntries(daemons.map((d) => [d.spec.conversationId, d.seq])),
          ackedBy: Object.fromEntries(daemons.map((d) => [d.spec.conversationId, d.acked])), ackHist, lastAckAt,
          lagP99: percentile(lagHist, 99), lagMax, maxBuffered, protocolErrors, closedDuringRun, load,
        };
        process.send!({ ev: 'stats', stats });
      } else if (msg.cmd === 'exit') {
        for (const d of daemons) d.ws?.terminate();
        process.exit(0);
      }
    })();
  });
}

// ------------------------------------------------------------------------------------------- worker: viewers

interface ViewerStats {
  connectFailures: string[];
  viewers: number;
  delivered: number;
  duplicates: number;
  /** Seqs skipped in the stream (a later one arrived first). */
  gaps: number;
  /** Seqs that never arrived by the end of the drain. */
  missing: number;
  malformed: number;
  hist: number[];
  /** Worst delivery latency per second since the start of publishing. */
  worstBySecond: number[];
  firstAt: number;
  lastAt: number;
  disconnected: number;
  load: Load;
}

class SimViewer {
  next = 1;
  delivered = 0;
  duplicates = 0;
  gaps = 0;
  /** SSE messages without a numeric id (there should be none). */
  malformed = 0;
  buf = '';
  open = false;

  constructor(readonly conversationId: string) {}
}

async function viewersWorker(): Promise<void> {
  const viewers: SimViewer[] = [];
  const hist = new Array<number>(BUCKETS).fill(0);
  const failures: string[] = [];
  let firstAt = 0;
  let lastAt = 0;
  let disconnected = 0;
  let meter: (() => Load) | undefined;
  let load: Load | undefined;
  let t0 = 0;
  let warmupMs = 0;
  const worstBySecond: number[] = [];

  const onMessage = (v: SimViewer, msg: string, now: number) => {
    if (!msg || msg.charCodeAt(0) === 58 /* ':' comment */) return;
    const at = msg.startsWith('id: ') ? 0 : msg.indexOf('\nid: ') + 1;
    const seq = at > 0 || msg.startsWith('id: ') ? parseInt(msg.slice(at + 4), 10) : NaN;
    if (!Number.isInteger(seq)) return void v.malformed++;
    if (seq < v.next) return void v.duplicates++;
    if (seq > v.next) v.gaps += seq - v.next;
    v.next = seq + 1;
    v.delivered++;
    const ts = msg.indexOf('"text":"t:');
    if (ts >= 0) {
      const sent = parseFloat(msg.slice(ts + 10, ts + 30));
      if (sent >= t0 + warmupMs) hist[bucketOf(now - sent)]!++;
      const sec = Math.max(0, Math.floor((sent - t0) / 1000));
      if (!(worstBySecond[sec]! >= now - sent)) worstBySecond[sec] = now - sent;
    }
    if (!firstAt) firstAt = now;
    lastAt = now;
  };

  const connect = (base: URL, token: string, v: SimViewer) =>
    new Promise<void>((done) => {
      const req = request({
        host: base.hostname, port: base.port, agent: false, path: `/api/v1/conversations/${v.conversationId}/events?from=1`,
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
      });
      req.setTimeout(120_000, () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        if (!v.open) failures.push(e.message), done();
        else disconnected++;
      });
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => (failures.push(`HTTP ${res.statusCode} ${body.slice(0, 200)}`), done()));
          return;
        }
        req.setTimeout(0);
        v.open = true;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const now = wallNow();
          let text = v.buf + chunk;
          let start = 0;
          for (let i = text.indexOf('\n\n'); i >= 0; i = text.indexOf('\n\n', start)) {
            onMessage(v, text.slice(start, i), now);
            start = i + 2;
          }
          v.buf = start ? text.slice(start) : text;
          text = '';
        });
        res.on('close', () => (v.open = false, disconnected++));
        done();
      });
      req.end();
    });

  process.on('message', (msg: { cmd: string; [k: string]: unknown }) => {
    void (async () => {
      if (msg.cmd === 'connect') {
        const t = performance.now();
        for (const c of msg.conversations as string[]) viewers.push(new SimViewer(c));
        await pool(viewers, msg.concurrency as number, (v) => connect(new URL(msg.url as string), msg.token as string, v));
        process.send!({ ev: 'connected', ok: viewers.filter((v) => v.open).length, failed: failures.length, failures: failures.slice(0, 5), ms: performance.now() - t });
      } else if (msg.cmd === 'start') {
        t0 = msg.t0 as number;
        warmupMs = msg.warmupMs as number;
        setTimeout(() => (meter = loadMeter()), Math.max(0, (msg.t0 as number) - wallNow()));
        setTimeout(() => (load = meter?.()), Math.max(0, (msg.t0 as number) + (msg.durationMs as number) - wallNow()));
      } else if (msg.cmd === 'expect') {
        const lastSeq = msg.lastSeq as Record<string, number>;
        const until = wallNow() + (msg.timeoutMs as number);
        const behind = () => viewers.some((v) => v.open && v.next <= (lastSeq[v.conversationId] ?? 0));
        while (behind() && wallNow() < until) await sleep(20);
        let missing = 0;
        for (const v of viewers) missing += Math.max(0, (lastSeq[v.conversationId] ?? 0) - (v.next - 1));
        const stats: ViewerStats = {
          connectFailures: failures, viewers: viewers.length, delivered: viewers.reduce((n, v) => n + v.delivered, 0),
          duplicates: viewers.reduce((n, v) => n + v.duplicates, 0), gaps: viewers.reduce((n, v) => n + v.gaps, 0), missing,
          malformed: viewers.reduce((n, v) => n + v.malformed, 0),
          hist, worstBySecond: Array.from(worstBySecond, (x) => x ?? 0), firstAt, lastAt, disconnected, load: load ?? meter?.() ?? { elu: 0, cpu: 0 },
        };
        process.send!({ ev: 'stats', stats });
      } else if (msg.cmd === 'exit') {
        process.exit(0);
      }
    })();
  });
}

// ------------------------------------------------------------------------------ baseline: bare ws + SSE fan-out

/** The same two protocols with nothing behind them: parse, fan out to the conversation's SSE responses, ack. */
function bareServer(): void {
  const subscribers = new Map<string, Set<ServerResponse>>();
  const http = createServer((req, res) => {
    const m = /^\/api\/v1\/conversations\/([^/?]+)\/events/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const key = m[1]!;
    let set = subscribers.get(key);
    if (!set) subscribers.set(key, (set = new Set()));
    set.add(res);
    req.on('close', () => set!.delete(res));
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  http.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as DaemonMessage;
        if (m.t === 'hello') return ws.send(JSON.stringify({ t: 'welcome', acked: {} } satisfies ServerMessage));
        if (m.t !== 'events') return;
        const acked: Record<string, number> = {};
        for (const e of m.events) {
          const frame = `event: event\ndata: ${JSON.stringify(e)}\nid: ${e.seq}\n\n`;
          for (const res of subscribers.get(e.conversationId) ?? []) res.write(frame);
          acked[e.conversationId] = e.seq;
        }
        ws.send(JSON.stringify({ t: 'ack', acked } satisfies ServerMessage));
      });
    }),
  );
  http.listen(0, '127.0.0.1', () => {
    const a = http.address();
    process.send!({ ev: 'listening', url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
  });
}

// ------------------------------------------------------------------------------------------------ coordinator

interface Size {
  daemons: number;
  viewers: number;
  rate: number;
}

interface Options extends Size {
  durationS: number;
  payload: number;
  daemonWorkers: number;
  viewerWorkers: number;
  fallback: string;
  baseline: boolean;
  cpuProf: boolean;
  drainS: number;
  /** Latency percentiles leave out events published in the first seconds (JIT, first writes); worst-per-second shows them. */
  warmupS: number;
  keep: boolean;
  /** cp or bare: one side only (for iterating on a single measurement). */
  only: string | undefined;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      daemons: { type: 'string' }, viewers: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' },
      payload: { type: 'string' }, 'daemon-workers': { type: 'string' }, 'viewer-workers': { type: 'string' },
      fallback: { type: 'string' }, 'no-baseline': { type: 'boolean' }, 'cpu-prof': { type: 'boolean' }, drain: { type: 'string' },
      keep: { type: 'boolean' }, only: { type: 'string' }, warmup: { type: 'string' },
    },
  });
  const num = (flag: string | undefined, env: string, dflt: number) => {
    const n = Number(flag ?? process.env[env] ?? dflt);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`bad value for ${env}: ${flag ?? process.env[env]}`);
    return n;
  };
  return {
    daemons: num(values.daemons, 'BENCH_DAEMONS', 1000),
    viewers: num(values.viewers, 'BENCH_VIEWERS', 5000),
    rate: num(values.rate, 'BENCH_RATE', 20_000),
    durationS: num(values.duration, 'BENCH_DURATION', 20),
    payload: num(values.payload, 'BENCH_PAYLOAD', 100),
    daemonWorkers: num(values['daemon-workers'], 'BENCH_DAEMON_WORKERS', 2),
    viewerWorkers: num(values['viewer-workers'], 'BENCH_VIEWER_WORKERS', 2),
    fallback: values.fallback ?? process.env.BENCH_FALLBACK ?? 'auto',
    baseline: !(values['no-baseline'] ?? process.env.BENCH_NO_BASELINE === '1'),
    cpuProf: values['cpu-prof'] ?? process.env.BENCH_CPU_PROF === '1',
    drainS: num(values.drain, 'BENCH_DRAIN', 30),
    warmupS: Number(values.warmup ?? process.env.BENCH_WARMUP ?? 3),
    keep: values.keep ?? false,
    only: values.only,
  };
}

type WorkerMsg = { ev: string; [k: string]: unknown };

/** A load-generator process (this file in another role), spoken to over IPC. */
class Worker {
  readonly child: ChildProcess;
  private readonly waiting = new Map<string, (m: WorkerMsg) => void>();

  constructor(role: string) {
    this.child = fork(SELF, [], { env: { ...process.env, CVM_BENCH_ROLE: role }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('error', () => undefined);
    this.child.on('message', (m: WorkerMsg) => {
      const w = this.waiting.get(m.ev);
      this.waiting.delete(m.ev);
      w?.(m);
    });
  }

  next(ev: string): Promise<WorkerMsg> {
    return new Promise((r) => this.waiting.set(ev, r));
  }

  ask(cmd: Record<string, unknown>, ev: string): Promise<WorkerMsg> {
    const p = this.next(ev);
    this.child.send(cmd);
    return p;
  }

  tell(cmd: Record<string, unknown>): void {
    this.child.send(cmd);
  }

  private exiting = false;

  exit(): void {
    if (this.exiting || !this.child.connected) return;
    this.exiting = true;
    this.child.send({ cmd: 'exit' }, () => undefined);
  }
}

const slices = <T>(xs: T[], n: number): T[][] => Array.from({ length: n }, (_, i) => xs.filter((_x, j) => j % n === i));

/** Busy and iowait CPU seconds of the whole machine, from /proc/stat: other people's work shows up here. */
function machineStats(): { busy: number; iowait: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  void idle;
  return { busy: (user + nice + system + irq + softirq + steal) / 100, iowait: iowait / 100 };
}

/** CPU seconds (user, system) and memory of a process, from /proc. */
function procStats(pid: number): { user: number; system: number; rssMb: number; hwmMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 100; // USER_HZ on Linux
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return { user: Number(f[11]) / tick, system: Number(f[12]) / tick, rssMb: kb('VmRSS'), hwmMb: kb('VmHWM') };
}

interface Target {
  kind: 'control plane' | 'bare ws+SSE';
  url: string;
  pid: number;
  /** Admin API token (the control plane) or anything (bare). */
  apiToken: string;
  specs: DaemonSpec[];
  /** After the daemons said hello: anything to check on the server's side. */
  afterHello(): Promise<string>;
  /** Every acknowledged event must be in the store, without holes: the count of those that are not (or -1: no store). */
  afterRun(acked: Record<string, number>): Promise<number>;
  /** Ends the server; says so if it had to be killed. */
  stop(): Promise<string | undefined>;
  /** The server's V8 profiler, through its inspector (--cpu-prof): started and stopped around the publishing window. */
  profiler?: Inspector;
}

interface Inspector {
  start(): Promise<void>;
  stop(): Promise<CpuProfile>;
  /** Forces a full GC and returns the JS heap in use (MB): tells retained memory from garbage not yet collected. */
  gc(): Promise<number>;
  close(): void;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** A minimal Chrome DevTools Protocol client: enough to run the Profiler domain of another node process. */
async function inspector(url: string): Promise<Inspector> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result), waiting.delete(m.id);
  });
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((r) => {
      waiting.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 500 });
  return {
    start: async () => void (await call('Profiler.start')),
    stop: async () => ((await call('Profiler.stop')) as { profile: CpuProfile }).profile,
    gc: async () => {
      await call('HeapProfiler.collectGarbage');
      return ((await call('Runtime.getHeapUsage')) as { usedSize: number }).usedSize / 2 ** 20;
    },
    close: () => ws.close(),
  };
}

async function waitFile(path: string, ms: number, child: ChildProcess): Promise<string> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      if (text.endsWith('\n')) return text.trim();
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${path}`);
}

const convId = (i: number) => `c_bench${String(i).padStart(6, '0')}`;
const wsId = (i: number) => `bench-ws-${String(i).padStart(5, '0')}`;

async function startControlPlane(o: Options, size: Size): Promise<Target> {
  const home = mkdtempSync(join(tmpdir(), 'cvm-bench-cp-'));
  const child = spawn(process.execPath, [...(o.cpuProf ? ['--inspect=127.0.0.1:0'] : []), BIN, 'server', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, CLAUDE_VM_HOME: home }, stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d;
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const server = JSON.parse(await waitFile(join(home, 'server.json'), 30_000, child)) as { url: string; pid: number };
  const apiToken = await waitFile(join(home, 'token'), 5_000, child);
  const debuggerUrl = /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
  const profiler = o.cpuProf && debuggerUrl ? await inspector(debuggerUrl) : undefined;

  // N running workspaces on a `local` provider, each with its tunnel token, written into the server's own database.
  const t = performance.now();
  const db = openSqlite(join(home, 'state.db'));
  const box = SecretBox.forHome(home);
  const admin = (await new AuthStore(db).listUsers()).find((u) => u.isAdmin)!;
  const specs: DaemonSpec[] = [];
  await db.tx(async (q) => {
    // The stores only need run/get/all, which the transaction handle has: one commit instead of 3N.
    const state = new StateStore(q as Db, box);
    const auth = new AuthStore(q as Db);
    await state.insertProvider({ name: 'local', type: 'local', options: {}, ownerId: null });
    for (let i = 0; i < size.daemons; i++) {
      const project = await state.findOrCreateProject({ name: `bench-${i}`, source: `/bench/${i}`, sourceKind: 'path' }, () => `prj_bench${i}`);
      await state.insertWorkspace({
        id: wsId(i), name: null, projectId: project.id, provider: 'local', image: 'bench', branch: null, projectDir: `/bench/${i}`,
        status: 'running', ownerId: admin.id, size: 'medium', autoStopSeconds: null,
      });
      specs.push({ workspaceId: wsId(i), token: await auth.replaceTunnelToken(admin.id, wsId(i)), conversationId: convId(i) });
    }
  });
  const setupMs = performance.now() - t;
  return {
    kind: 'control plane', url: server.url, pid: server.pid, apiToken, specs, profiler,
    afterHello: async () => {
      const rows = await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM conversations WHERE workspace_id LIKE 'bench-ws-%'");
      return `${size.daemons} workspaces + tunnel tokens inserted in ${setupMs.toFixed(0)} ms; conversation rows the server recorded on hello: ${rows!.n}/${size.daemons}`;
    },
    afterRun: async (acked) => {
      const rows = await db.all<{ c: string; n: number; m: number }>(
        "SELECT conversation_id AS c, COUNT(*) AS n, MAX(seq) AS m FROM events WHERE workspace_id LIKE 'bench-ws-%' GROUP BY conversation_id",
      );
      const stored = new Map(rows.map((r) => [r.c, Number(r.n) === Number(r.m) ? Number(r.n) : 0]));
      return Object.entries(acked).reduce((n, [c, seq]) => n + Math.max(0, seq - (stored.get(c) ?? 0)), 0);
    },
    stop: async () => {
      await db.close();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      // A server still working through a backlog finishes it before it exits (and writes its profile).
      await Promise.race([exited, sleep(15_000)]);
      let note: string | undefined;
      if (child.exitCode === null && child.signalCode === null) {
        note = 'the server had not exited 15 s after SIGTERM (still working through its backlog); killed';
        child.kill('SIGKILL');
      }
      if (/error|failed/i.test(stderr) || process.env.BENCH_VERBOSE) console.log(`  server stderr (tail):\n${stderr.split('\n').slice(-8).map((l) => '    ' + l).join('\n')}`);
      if (!o.keep) rmSync(home, { recursive: true, force: true });
      return note;
    },
  };
}

async function startBare(size: Size): Promise<Target> {
  const child = fork(SELF, [], { env: { ...process.env, CVM_BENCH_ROLE: 'bare' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise<string>((r) => child.once('message', (m: WorkerMsg) => r(m.url as string)));
  return {
    kind: 'bare ws+SSE', url, pid: child.pid!, apiToken: 'none',
    specs: Array.from({ length: size.daemons }, (_, i) => ({ workspaceId: wsId(i), token: 'none', conversationId: convId(i) })),
    afterHello: async () => '',
    afterRun: async () => -1,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      return undefined;
    },
  };
}

interface Result {
  kind: string;
  size: Size;
  durationS: number;
  daemonsConnected: number;
  viewersConnected: number;
  connectMs: { daemons: number; viewers: number };
  sent: number;
  acked: number;
  ingestRate: number;
  deliveries: number;
  deliveryRate: number;
  expectedDeliveries: number;
  /** Expected SSE deliveries that had not arrived when the drain ended. */
  undelivered: number;
  /** Sent but never acknowledged. */
  unacked: number;
  /** Acknowledged but not in the store (-1: the baseline has no store). */
  unstored: number;
  /** Milliseconds between the last delivery and the end of the drain (small: still delivering, a backlog). */
  quietMs: number;
  drainS: number;
  warmupS: number;
  duplicates: number;
  gaps: number;
  p50: number;
  p99: number;
  ackP99: number;
  worstBySecond: number[];
  server: { cpu: number; user: number; system: number; rssMb: number; hwmMb: number; runPeakMb: number; idleRssMb: number; cpuMsPer1kDeliveries: number };
  gen: { daemons: Load[]; viewers: Load[]; lagP99: number; lagMax: number; maxBuffered: number };
  /** CPU (in cores) used meanwhile by processes not in this bench, and time cores sat waiting for I/O. */
  machine: { others: number; iowait: number; wallS: number; busy: number; cores: number };
  notes: string[];
  profile?: string;
}

async function run(o: Options, size: Size, kind: 'cp' | 'bare'): Promise<Result> {
  const notes: string[] = [];
  const target = kind === 'cp' ? await startControlPlane(o, size) : await startBare(size);
  const dWorkers = Array.from({ length: Math.min(o.daemonWorkers, size.daemons) }, () => new Worker('daemons'));
  const vWorkers = Array.from({ length: Math.min(o.viewerWorkers, size.viewers) }, () => new Worker('viewers'));
  try {
    const dSlices = slices(target.specs, dWorkers.length);
    const dConn = await Promise.all(dWorkers.map((w, i) => w.ask({ cmd: 'connect', url: target.url.replace(/^http/, 'ws'), daemons: dSlices[i], concurrency: 50 }, 'connected')));
    const daemonsConnected = dConn.reduce((n, m) => n + (m.ok as number), 0);
    for (const m of dConn) if (m.failed) notes.push(`daemon connect failures ${String(m.failed)}: ${(m.failures as string[]).join('; ')}`);
    const hello = await target.afterHello();
    if (hello) notes.push(hello);

    const convs = Array.from({ length: size.viewers }, (_, i) => convId(i % size.daemons));
    const vSlices = slices(convs, vWorkers.length);
    const vConn = await Promise.all(vWorkers.map((w, i) => w.ask({ cmd: 'connect', url: target.url, token: target.apiToken, conversations: vSlices[i], concurrency: 50 }, 'connected')));
    const viewersConnected = vConn.reduce((n, m) => n + (m.ok as number), 0);
    for (const m of vConn) if (m.failed) notes.push(`viewer connect failures ${String(m.failed)}: ${(m.failures as string[]).join('; ')}`);
    await sleep(1000);

    const idle = procStats(target.pid);
    const durationMs = o.durationS * 1000;
    const t0 = wallNow() + 1000;
    const perWorker = dSlices.map((s) => (size.rate * s.length) / size.daemons);
    for (const [i, w] of dWorkers.entries()) w.tell({ cmd: 'start', t0, rate: perWorker[i], durationMs, payload: o.payload });
    for (const w of vWorkers) w.tell({ cmd: 'start', t0, durationMs, warmupMs: o.warmupS * 1000 });
    await sleep(t0 - wallNow());
    await target.profiler?.start();
    const cpu0 = procStats(target.pid);
    const ourPids = [target.pid, ...[...dWorkers, ...vWorkers].map((w) => w.child.pid!)];
    const ours = () => ourPids.reduce((n, pid) => n + procStats(pid).user + procStats(pid).system, 0) + (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
    const ours0 = ours();
    const m0 = machineStats();
    const h0 = process.hrtime.bigint();
    let runPeakMb = cpu0.rssMb;
    const sampler = setInterval(() => (runPeakMb = Math.max(runPeakMb, procStats(target.pid).rssMb)), 250);

    await Promise.all(dWorkers.map((w) => w.next('sent')));
    const dStats = (await Promise.all(dWorkers.map((w) => w.ask({ cmd: 'drain', timeoutMs: o.drainS * 1000 }, 'stats')))).map((m) => m.stats as DaemonStats);
    const lastSeq = Object.assign({}, ...dStats.map((s) => s.lastSeq)) as Record<string, number>;
    const vStats = (await Promise.all(vWorkers.map((w) => w.ask({ cmd: 'expect', lastSeq, timeoutMs: o.drainS * 1000 }, 'stats')))).map((m) => m.stats as ViewerStats);
    const h1 = process.hrtime.bigint();
    const drainEnd = wallNow();
    const cpuProfile = await target.profiler?.stop();
    if (target.profiler) {
      const heapMb = await target.profiler.gc();
      notes.push(`after a forced full GC: RSS ${f1(procStats(target.pid).rssMb)} MB, JS heap in use ${f1(heapMb)} MB (retained, not just uncollected garbage)`);
      target.profiler.close();
    }
    clearInterval(sampler);
    const end = procStats(target.pid);
    const m1 = machineStats();
    const ours1 = ours();
    const wallS = Number(h1 - h0) / 1e9;
    const unstored = await target.afterRun(Object.assign({}, ...dStats.map((s) => s.ackedBy)) as Record<string, number>);

    const sentN = dStats.reduce((n, s) => n + s.sent, 0);
    const acked = dStats.reduce((n, s) => n + s.acked, 0);
    const lastAck = Math.max(...dStats.map((s) => s.lastAckAt));
    const deliveries = vStats.reduce((n, s) => n + s.delivered, 0);
    const lastDelivery = Math.max(...vStats.map((s) => s.lastAt));
    // Each conversation has viewers/daemons viewers (rounded): what every event should have reached.
    const viewersOf = new Map<string, number>();
    for (const c of convs) viewersOf.set(c, (viewersOf.get(c) ?? 0) + 1);
    const expectedDeliveries = Object.entries(lastSeq).reduce((n, [c, s]) => n + s * (viewersOf.get(c) ?? 0), 0);
    const hist = merge(vStats.map((s) => s.hist));
    const ackHist = merge(dStats.map((s) => s.ackHist));
    const cpuS = end.user + end.system - cpu0.user - cpu0.system;
    const others = (m1.busy - m0.busy - (ours1 - ours0)) / wallS;
    const iowait = (m1.iowait - m0.iowait) / wallS;
    for (const s of dStats) {
      if (s.protocolErrors) notes.push(`protocol errors seen by daemons: ${s.protocolErrors}`);
      if (s.closedDuringRun) notes.push(`tunnels closed during the run: ${s.closedDuringRun}`);
    }
    for (const s of vStats) if (s.disconnected) notes.push(`viewer streams that ended during the run: ${s.disconnected}`);
    for (const s of vStats) if (s.malformed) notes.push(`SSE messages without a numeric id: ${s.malformed}`);

    let profile: string | undefined;
    for (const w of [...dWorkers, ...vWorkers]) w.exit();
    const stopped = await target.stop();
    if (stopped) notes.push(stopped);
    if (cpuProfile) profile = summarizeProfile(cpuProfile);
    return {
      kind: target.kind, size, durationS: o.durationS, daemonsConnected, viewersConnected,
      connectMs: { daemons: Math.max(...dConn.map((m) => m.ms as number)), viewers: Math.max(...vConn.map((m) => m.ms as number)) },
      sent: sentN, acked, ingestRate: acked / Math.max(o.durationS, (lastAck - t0) / 1000),
      deliveries,
      deliveryRate: deliveries / (size.viewers / size.daemons) / Math.max(o.durationS, (lastDelivery - t0) / 1000),
      expectedDeliveries,
      undelivered: vStats.reduce((n, s) => n + s.missing, 0), unacked: sentN - acked, unstored,
      quietMs: drainEnd - lastDelivery, drainS: o.drainS, warmupS: o.warmupS,
      duplicates: vStats.reduce((n, s) => n + s.duplicates, 0), gaps: vStats.reduce((n, s) => n + s.gaps, 0),
      p50: percentile(hist, 50), p99: percentile(hist, 99), ackP99: percentile(ackHist, 99),
      worstBySecond: vStats.reduce<number[]>((w, s) => (s.worstBySecond.forEach((x, i) => (w[i] = Math.max(w[i] ?? 0, x))), w), []),
      server: {
        cpu: cpuS / wallS, user: (end.user - cpu0.user) / wallS, system: (end.system - cpu0.system) / wallS, rssMb: end.rssMb, hwmMb: end.hwmMb, runPeakMb,
        idleRssMb: idle.rssMb, cpuMsPer1kDeliveries: (cpuS * 1000) / (deliveries / 1000),
      },
      gen: {
        daemons: dStats.map((s) => s.load), viewers: vStats.map((s) => s.load), lagP99: Math.max(...dStats.map((s) => s.lagP99)),
        lagMax: Math.max(...dStats.map((s) => s.lagMax)), maxBuffered: Math.max(...dStats.map((s) => s.maxBuffered)),
      },
      machine: { others, iowait, wallS, busy: (m1.busy - m0.busy) / wallS, cores: cpus().length },
      notes, profile,
    };
  } finally {
    for (const w of [...dWorkers, ...vWorkers]) w.exit();
    await sleep(200);
  }
}

/** Where the server's CPU went while events flowed: self time by area and by function. */
function summarizeProfile(p: CpuProfile): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    const f = byId.get(p.samples[i]!)!;
    total += dt;
    const url = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^\/.*\/dist\/src\//, 'dist/src/');
    const fn = `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`;
    fns.set(fn, (fns.get(fn) ?? 0) + dt);
    const area = !url
      ? f.functionName.startsWith('(') ? f.functionName : 'native (syscalls such as writev, V8 builtins, sqlite)'
      : url.startsWith('node_modules/hono/') ? 'hono (router, SSE helper)'
        : url.startsWith('node_modules/@hono/node-server') ? '@hono/node-server (web streams → http)'
          : url.startsWith('node_modules/ws/') ? 'ws'
            : url.startsWith('node_modules/better-sqlite3') ? 'better-sqlite3 (js side)'
              : url.includes('zod') ? 'zod'
                : url.startsWith('node:internal/webstreams') ? 'node web streams'
                  : url.startsWith('node:internal/deps/undici') ? 'undici (Request/Response)'
                    : url.startsWith('node:') ? 'node core (http, net, streams, timers)'
                      : url.startsWith('dist/src/') ? `claude-vm ${url.slice('dist/src/'.length)}`
                        : url;
    areas.set(area, (areas.get(area) ?? 0) + dt);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `    ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`).join('\n');
  return `  server CPU profile of the publish + drain window (${(total / 1e6).toFixed(1)} s sampled)\n  by area:\n${top(areas, 14)}\n  by function (self time):\n${top(fns, 16)}`;
}

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

function report(r: Result): void {
  const s = r.size;
  console.log(`\n== ${r.kind}: ${s.daemons} daemons, ${s.viewers} viewers (${f1(s.viewers / s.daemons)} per conversation), target ${f0(s.rate)} events/s for ${r.durationS} s`);
  console.log(`  connected      daemons ${r.daemonsConnected}/${s.daemons} in ${f0(r.connectMs.daemons)} ms, viewers ${r.viewersConnected}/${s.viewers} in ${f0(r.connectMs.viewers)} ms`);
  console.log(`  ingested       ${f0(r.acked)}/${f0(r.sent)} events acked   ${f0(r.ingestRate)} events/s   ack p99 ${f1(r.ackP99)} ms`);
  console.log(`  delivered      ${f0(r.deliveries)}/${f0(r.expectedDeliveries)} SSE events   ${f0(r.deliveryRate)} events/s to all their viewers (${f0(r.deliveryRate * (s.viewers / s.daemons))} SSE messages/s)`);
  console.log(`  latency        publish → viewer p50 ${f1(r.p50)} ms, p99 ${f1(r.p99)} ms (after a ${r.warmupS} s warm-up); worst per second of publishing: ${r.worstBySecond.map((x) => f0(x)).join(' ')} ms`);
  console.log(
    `  correctness    gaps ${f0(r.gaps)}, duplicated ${f0(r.duplicates)}, acked but not stored ${r.unstored < 0 ? 'n/a' : f0(r.unstored)}; ` +
      `when the ${r.drainS} s drain ended: unacked ${f0(r.unacked)} events, undelivered ${f0(r.undelivered)} SSE events` +
      (r.undelivered + r.unacked > 0 ? ` (last delivery ${f0(r.quietMs)} ms before: ${r.quietMs < 2000 ? 'still delivering, a backlog' : 'stalled'})` : ''),
  );
  console.log(`  server         CPU ${pct(r.server.cpu)} of a core (user ${pct(r.server.user)}, system ${pct(r.server.system)}), ${f1(r.server.cpuMsPer1kDeliveries)} CPU ms per 1000 SSE messages`);
  console.log(`                 RSS idle-connected ${f1(r.server.idleRssMb)} MB, peak while publishing ${f1(r.server.runPeakMb)} MB, after ${f1(r.server.rssMb)} MB, VmHWM (whole life) ${f1(r.server.hwmMb)} MB`);
  const loads = (ls: Load[]) => ls.map((l) => `loop ${pct(l.elu)} cpu ${pct(l.cpu)}`).join(' | ');
  console.log(`  load generator daemons [${loads(r.gen.daemons)}]  viewers [${loads(r.gen.viewers)}]`);
  console.log(`                 schedule lag p99 ${f1(r.gen.lagP99)} ms (max ${f1(r.gen.lagMax)} ms), largest unsent tunnel buffer ${f0(r.gen.maxBuffered)} B`);
  console.log(
    `  machine        ${f1(r.machine.busy)} of ${r.machine.cores} cores busy, of which other processes (not this bench) ${f1(r.machine.others)}; ` +
      `iowait ${f1(r.machine.iowait)} cores (over ${f1(r.machine.wallS)} s publish + drain)`,
  );
  console.log(`  limited by     ${limiter(r)}`);
  for (const n of r.notes) console.log(`  note           ${n}`);
  if (r.profile) console.log(r.profile);
}

/** What held the throughput back, from the numbers themselves. */
function limiter(r: Result): string {
  const kept = r.ingestRate >= 0.98 * r.size.rate && r.deliveryRate >= 0.98 * r.size.rate && r.p99 < 1000;
  if (kept) return 'nothing: the target rate was sustained';
  const why: string[] = [];
  const gen = [...r.gen.daemons, ...r.gen.viewers];
  const busiest = Math.max(...gen.map((l) => l.cpu));
  if (busiest > 0.85) why.push(`the load generator: a worker used ${pct(busiest)} of a core`);
  else if (r.gen.lagP99 > 250) why.push(`the load generator sent ${f0(r.gen.lagP99)} ms behind schedule (p99) while using at most ${pct(busiest)} of a core: starved of CPU by the other processes`);
  if (r.server.cpu > 0.9) why.push(`server CPU (${pct(r.server.cpu)} of its one JS thread's core)`);
  if (r.machine.busy > 0.9 * r.machine.cores) {
    why.push(`the machine: all ${r.machine.cores} cores busy (other processes ${f1(r.machine.others)} cores), so the server got only ${pct(r.server.cpu)} of a core; ` + 'the server and generator compete for CPU');
  }
  if (r.machine.iowait >= 0.05) why.push(`I/O waits (iowait ${f1(r.machine.iowait)} cores): the server's JS thread blocks in SQLite commits (fsync), time its CPU figure does not show`);
  return why.length ? why.join('; ') : 'the server without saturating a core: waits inside it (see --cpu-prof)';
}

function goals(r: Result, base: Result | undefined): void {
  const s = r.size;
  const atGoalSize = s.daemons >= 1000 && s.viewers >= 5000;
  console.log(`\n-- goals (${s.daemons} daemons / ${s.viewers} viewers / ${f0(s.rate)} events/s target${atGoalSize ? '' : ' — SMALLER than the goal size'})`);
  const rateOk = r.ingestRate >= 0.98 * 20_000 && r.deliveryRate >= 0.98 * 20_000;
  console.log(`  ≥ 20,000 events/s   ingested ${f0(r.ingestRate)}, delivered ${f0(r.deliveryRate)}   ${verdict(rateOk && atGoalSize)}`);
  const clean = r.gaps === 0 && r.duplicates === 0 && r.unstored <= 0;
  const lostOk = clean && r.undelivered === 0 && r.unacked === 0;
  console.log(
    `  0 lost              gaps ${f0(r.gaps)}, duplicated ${f0(r.duplicates)}, undelivered ${f0(r.undelivered)}, unacked ${f0(r.unacked)}   ${verdict(lostOk)}` +
      (!lostOk && clean ? ` (nothing was dropped or reordered; ${f0(r.undelivered)} deliveries were still queued in the server when the drain ended)` : ''),
  );
  console.log(`  < 300 MB            RSS peak while publishing ${f1(r.server.runPeakMb)} MB, VmHWM ${f1(r.server.hwmMb)} MB   ${verdict(r.server.hwmMb < 300)}`);
  console.log(`  1,000 daemons       ${r.daemonsConnected} connected   ${verdict(r.daemonsConnected >= 1000)}`);
  console.log(`  5,000 viewers       ${r.viewersConnected} connected   ${verdict(r.viewersConnected >= 5000)}`);
  console.log(`  p99 delivery        ${f1(r.p99)} ms (reported; the issue sets no number)`);
  if (base) {
    console.log(
      `  control plane / bare ws fan-out  events/s ${(r.deliveryRate / base.deliveryRate).toFixed(2)}x (${f0(r.deliveryRate)} vs ${f0(base.deliveryRate)}), ` +
        `p99 ${f1(r.p99)} vs ${f1(base.p99)} ms, CPU per SSE message ${(r.server.cpuMsPer1kDeliveries / base.server.cpuMsPer1kDeliveries).toFixed(1)}x, ` +
        `RSS ${f1(r.server.runPeakMb)} vs ${f1(base.server.runPeakMb)} MB`,
    );
  }
}

async function coordinator(): Promise<void> {
  const o = options();
  console.log(`control-plane bench: node ${process.version}, ${cpus().length} cores shared by the server and the load generator ` +
    `(${o.daemonWorkers} daemon + ${o.viewerWorkers} viewer processes), ${o.payload} B payloads`);
  const sizes: Size[] = [{ daemons: o.daemons, viewers: o.viewers, rate: o.rate }];
  const all: Result[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    const base = o.baseline && o.only !== 'cp' ? await run(o, size, 'bare') : undefined;
    if (base) report(base), all.push(base);
    if (o.only === 'bare') continue;
    const cp = await run(o, size, 'cp');
    report(cp);
    all.push(cp);
    goals(cp, base);
    const sustained = cp.ingestRate >= 0.98 * size.rate && cp.deliveryRate >= 0.98 * size.rate && cp.undelivered + cp.unacked + cp.gaps + cp.duplicates === 0 && cp.p99 < 1000;
    const m = /^(\d+)x(\d+)@(\d+)$/.exec(o.fallback);
    if (!sustained && o.fallback !== 'none' && (m ? i === 0 : i < 3)) {
      // auto: the same connections at 60 % of what was achieved, until a rate is sustained (at most 3 steps).
      const rate = Math.max(250, Math.floor((0.6 * Math.min(cp.ingestRate, cp.deliveryRate, size.rate)) / 250) * 250);
      const next = m ? { daemons: Number(m[1]), viewers: Number(m[2]), rate: Number(m[3]) } : { ...size, rate };
      sizes.push(next);
      console.log(`\nThat size was not sustained (target rate, nothing left undelivered, p99 < 1 s); next: ${next.daemons} daemons, ${next.viewers} viewers, ${f0(next.rate)} events/s.`);
    }
  }
  console.log('\n-- summary (goal: 1000 daemons, 5000 viewers, ≥ 20,000 events/s, 0 lost, < 300 MB)');
  console.log('  server         daemons viewers  target/s  ingested/s delivered/s  p50 ms   p99 ms  not delivered  RSS peak MB  server CPU  other load');
  for (const r of all) {
    console.log(
      `  ${r.kind.padEnd(14)} ${String(r.size.daemons).padStart(7)} ${String(r.size.viewers).padStart(7)} ${f0(r.size.rate).padStart(9)} ${f0(r.ingestRate).padStart(11)} ` +
        `${f0(r.deliveryRate).padStart(11)} ${f1(r.p50).padStart(7)} ${f1(r.p99).padStart(8)} ${f0(r.undelivered + r.gaps).padStart(14)} ${f1(r.server.hwmMb).padStart(12)} ` +
        `${pct(r.server.cpu).padStart(11)} ${f1(r.machine.others).padStart(8)} cores`,
    );
  }
  process.exit(0);
}

const role = process.env.CVM_BENCH_ROLE;
if (role === 'daemons') await daemonsWorker();
else if (role === 'viewers') await viewersWorker();
else if (role === 'bare') bareServer();
else await coordinator();
