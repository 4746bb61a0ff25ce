/**
 * Agent conversations through the workspace daemon, against running `claude -p` directly in the same container
 * with the same scripted model (issue 3 goals):
 *   - 3-turn conversation wall time, daemon vs direct: goal ≤ 1.1× (through the CLI, one process per command,
 *     and through the API from one client process)
 *   - event latency, daemon append → CLI follower (`logs --follow --json`): goal p99 < 20 ms
 *   - daemon idle RSS: goal ≤ 40 MB; printed beside the RSS of an idle node process that loads the same builtins,
 *     in the same workspace (no Node daemon can go below it)
 * Run: `npm run build && node dist/bench/agent-turns.js [reps]` (needs the workspace image and a Docker engine).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScriptedAnthropic } from '../test/support/scripted-anthropic.js';
import type { AnyEvent } from '../src/protocol/events.js';
import { resolveConnection } from '../src/client/connect.js';
import { httpClient } from '../src/client/http.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO, 'bin', 'claude-vm.js');
const IMAGE = process.env.CLAUDE_VM_TEST_IMAGE || 'claude-vm/workspace:latest';
const REPS = Number(process.argv[2] ?? 3);
const HOME = mkdtempSync(join(tmpdir(), 'cvm-bench-agent-'));
const env = { ...process.env, CLAUDE_VM_HOME: HOME };

const cvm = (...a: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...a], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`claude-vm ${a.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const turns = () => [{ text: 'one' }, { text: 'two' }, { text: 'three' }];

const model = await ScriptedAnthropic.start();
const project = join(mkdtempSync(join(tmpdir(), 'cvm-bench-src-')), 'app');
mkdirSync(project);
writeFileSync(join(project, 'README.md'), 'bench\n');
cvm('provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host');
const ws = JSON.parse(cvm('workspace', 'up', project, '--provider', 'hostnet', '--image', IMAGE, '--json')) as { id: string; projectDir: string };
cvm('agent', 'set', 'claude', '--base-url', model.url, '--secret', 'ANTHROPIC_API_KEY=bench');

/** claude -p run directly in the container: three messages, each written after the previous result. */
function direct(): Promise<number> {
  return new Promise((done) => {
    const t0 = performance.now();
    const p = spawn('docker', ['exec', '-i', '-w', ws.projectDir, '-e', `ANTHROPIC_BASE_URL=${model.url}`, '-e', 'ANTHROPIC_API_KEY=bench', '-e', 'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
      `claude-vm-${ws.id}`, 'claude', '-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions']);
    const say = (t: string) => p.stdin.write(JSON.stringify({ type: 'user', message: { role: 'user', content: t } }) + '\n');
    let results = 0;
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      const lines = (buf + d.toString()).split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.includes('"type":"result"')) {
        if (++results === 3) { p.stdin.end(); done(performance.now() - t0); } else say(`msg ${results + 1}`);
      }
    });
    say('msg 1');
  });
}

/**
 * The same three messages through the daemon, as a client sees it: new-chat, then `send` on each turn end
 * (interactive), or all three queued at once (queued: the daemon paces them).
 */
async function viaDaemon(queued: boolean): Promise<number> {
  const t0 = performance.now();
  const conv = cvm('new-chat', ws.id, '-m', 'msg 1');
  lastConv = conv;
  if (queued) cvm('send', conv, 'msg 2'), cvm('send', conv, 'msg 3');
  const follower = spawn(process.execPath, [BIN, 'logs', conv, '--follow', '--json'], { env });
  return new Promise((done) => {
    let completed = 0;
    let buf = '';
    follower.stdout.on('data', (d: Buffer) => {
      const lines = (buf + d.toString()).split('\n');
      buf = lines.pop()!;
      for (const l of lines.filter(Boolean)) {
        const e = JSON.parse(l) as AnyEvent;
        if (e.type !== 'turn.completed') continue;
        if (++completed === 3) { follower.kill(); done(performance.now() - t0); } else if (!queued) cvm('send', conv, `msg ${completed + 1}`);
      }
    });
  });
}

/**
 * The same three messages through the public API from one client process (what the web UI or an SDK does): no
 * CLI process per call competing with the agent for this machine's cores, so what is left is the daemon, the
 * tunnel and the control plane.
 */
const api = httpClient(await resolveConnection(HOME));
async function viaApi(): Promise<number> {
  const t0 = performance.now();
  const conv = await api.conversations.create({ workspace: ws.id, message: 'msg 1' });
  const stop = new AbortController();
  let completed = 0;
  await new Promise<void>((done) => {
    void api.conversations.events(conv.id, {
      follow: true,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type !== 'turn.completed') return;
        if (++completed === 3) done();
        else void api.conversations.send(conv.id, `msg ${completed + 1}`);
      },
    }).catch(() => undefined);
  });
  stop.abort();
  return performance.now() - t0;
}

let lastConv = '';
/** The daemon's own share, from its log: first message handed to the agent → third turn completed. */
function daemonSide(conv: string): number {
  const es = cvm('logs', conv, '--json').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
  const start = es.find((e) => e.type === 'message.sent')!;
  const end = es.filter((e) => e.type === 'turn.completed')[2]!;
  return Date.parse(end.time) - Date.parse(start.time);
}
const daemonSideTimes: number[] = [];
const directTimes: number[] = [];
const daemonTimes: number[] = [];
const queuedTimes: number[] = [];
const apiTimes: number[] = [];
const latencies: number[] = [];
for (let i = 0; i < REPS; i++) {
  model.enqueue(...turns());
  directTimes.push(await direct());
  model.enqueue(...turns());
  daemonTimes.push(await viaDaemon(false));
  model.enqueue(...turns());
  queuedTimes.push(await viaDaemon(true));
  model.enqueue(...turns());
  apiTimes.push(await viaApi());
  daemonSideTimes.push(daemonSide(lastConv));
}

/** Latency of live events only: a follower attached to an idle conversation times each event of new turns. */
async function measureLatency(conv: string, n: number): Promise<void> {
  const follower = spawn(process.execPath, [BIN, 'logs', conv, '--follow', '--json'], { env });
  let live = false;
  let replayedUpTo = Infinity;
  let buf = '';
  let completed = 0;
  const finished = new Promise<void>((done) => {
    follower.stdout.on('data', (d: Buffer) => {
      const now = Date.now();
      const lines = (buf + d.toString()).split('\n');
      buf = lines.pop()!;
      for (const l of lines.filter(Boolean)) {
        const e = JSON.parse(l) as AnyEvent;
        if (!live || e.seq <= replayedUpTo) continue;
        latencies.push(now - Date.parse(e.time));
        if (process.env.BENCH_DEBUG && now - Date.parse(e.time) > 50) console.error(`slow event ${e.seq} ${e.type} ${now - Date.parse(e.time)} ms`);
        if (e.type === 'turn.completed' && ++completed === n) done();
      }
    });
  });
  await new Promise((r) => setTimeout(r, 1500));
  // Only events appended from now on are live; earlier ones arrive as replay.
  replayedUpTo = (JSON.parse(cvm('conversations', '-w', ws.id, '--json')) as Array<{ id: string; lastSeq: number }>).find((c) => c.id === conv)!.lastSeq;
  live = true;
  for (let i = 0; i < n; i++) model.enqueue({ tools: [{ name: 'Bash', input: { command: `echo ${i}` } }] }, { text: `done ${i}` });
  // The stimulus goes through the API from this process: a CLI process per send would time its own start-up on
  // these two cores as much as the path under test (agent → daemon → control plane → CLI follower).
  for (let i = 0; i < n; i++) await api.conversations.send(conv, `step ${i}`);
  await finished;
  follower.kill();
}
model.enqueue({ text: 'ready' });
const latencyConv = cvm('new-chat', ws.id, '-m', 'warm up');
await new Promise((r) => setTimeout(r, 3000));
await measureLatency(latencyConv, 20); // ~120 events, so p99 is not just the slowest one
await new Promise((r) => setTimeout(r, 2000));
const inWorkspace = (script: string) => spawnSync('docker', ['exec', '-u', 'dev', `claude-vm-${ws.id}`, 'sh', '-c', script], { encoding: 'utf8' }).stdout.trim();
const smapsOf = (pid: string) => Object.fromEntries(inWorkspace(`cat /proc/${pid}/smaps_rollup`)
  .split('\n').map((l) => /^(\w+):\s+(\d+) kB/.exec(l)).filter((m): m is RegExpExecArray => !!m).map((m) => [m[1]!, Number(m[2])]));
const daemonPid = inWorkspace("ps -o pid=,args= -u dev | grep 'main.js serve' | grep -v grep | awk '{print $1}'");
// RSS counts the pages of the node binary the daemon touched, which every Node process in the workspace (the
// agents too) shares; the private part is what the daemon itself costs.
const memory = smapsOf(daemonPid);
// The floor under any Node daemon, measured in the same workspace: a node process that loads the builtins this
// daemon needs (processes, sockets, lines, hashes, files) and does nothing.
const floorScript = "for (const m of ['node:net', 'node:child_process', 'node:readline', 'node:crypto', 'node:stream', 'node:fs/promises', 'node:os', 'node:url']) require(m); require('node:crypto').createHash('sha256').update('').digest(); setInterval(() => {}, 1e6)";
const floorPid = inWorkspace(`node -e "${floorScript}" >/dev/null 2>&1 & p=$!; sleep 2; echo $p`);
const floor = smapsOf(floorPid);
const emptyPid = inWorkspace(`node -e "setInterval(() => {}, 1e6)" >/dev/null 2>&1 & p=$!; sleep 2; echo $p`);
const empty = smapsOf(emptyPid);
inWorkspace(`kill ${floorPid} ${emptyPid}`);
const nodeVersion = inWorkspace('node --version');
const rss = memory.Rss ?? 0;
const privateKb = (memory.Private_Clean ?? 0) + (memory.Private_Dirty ?? 0);

console.log(`${REPS} reps, medians; scripted model on loopback`);
console.log(`3-turn conversation  direct ${median(directTimes).toFixed(0)} ms`);
console.log(`  via daemon, a CLI send after each turn  ${median(daemonTimes).toFixed(0)} ms  ratio ${(median(daemonTimes) / median(directTimes)).toFixed(2)}x  goal ≤ 1.1x`);
console.log(`  via daemon, all three queued at once    ${median(queuedTimes).toFixed(0)} ms  ratio ${(median(queuedTimes) / median(directTimes)).toFixed(2)}x  goal ≤ 1.1x`);
console.log(`  via daemon, the API from one client       ${median(apiTimes).toFixed(0)} ms  ratio ${(median(apiTimes) / median(directTimes)).toFixed(2)}x  goal ≤ 1.1x`);
console.log(`  the daemon's own share (its log: first message sent → third turn done)  ${median(daemonSideTimes).toFixed(0)} ms  ratio ${(median(daemonSideTimes) / median(directTimes)).toFixed(2)}x`);
console.log(`event latency (daemon → CLI follower, ${latencies.length} events)  p50 ${pct(latencies, 50)} ms  p99 ${pct(latencies, 99)} ms  goal p99 < 20 ms`);
const mbOf = (kb: number | undefined) => ((kb ?? 0) / 1024).toFixed(1);
console.log(`daemon idle RSS ${mbOf(rss)} MB  goal ≤ 40 MB  (private ${mbOf(privateKb)} MB, proportional share ${mbOf(memory.Pss)} MB)`);
console.log(`  node ${nodeVersion} in the same workspace: empty ${mbOf(empty.Rss)} MB; with the daemon's builtins ${mbOf(floor.Rss)} MB, so the daemon's own share is ${mbOf(rss - (floor.Rss ?? 0))} MB (${(rss / (floor.Rss ?? 1)).toFixed(2)}× that floor)`);
cvm('workspace', 'delete', ws.id, '--purge', '-y');
await model.close();
process.exit(0);
