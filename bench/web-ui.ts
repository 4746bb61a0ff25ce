/**
 * The web UI's budget (issue goals), in Debian's Chromium against a real control plane:
 *   - initial JavaScript ≤ 200 KB gzipped (what index.html loads before any route's chunk)
 *   - a 10,000-event conversation opens and scrolls smoothly: time to first render, next to the same view of a
 *     10-event conversation measured in the same run (the ratio says what the length costs), and frame times while
 *     scrolling from the newest event to the oldest and back.
 * The conversations are written straight into the server's store (as a workspace's tunnel would), so no workspace
 * runs. Run: `npm run build && node dist/bench/web-ui.js [runs]` (default 5).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../src/server/server.js';
import { DEFAULT_POLICY } from '../src/server/policy-defaults.js';
import type { AnyEvent, ConversationInfo } from '../src/protocol/events.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUNS = Number(process.argv[2] ?? 5);
const home = mkdtempSync(join(tmpdir(), 'cvm-bench-ui-'));
const server = await startServer({ home, listen: '127.0.0.1:0', policy: { ...DEFAULT_POLICY, intervalMs: 3600_000 }, snapshots: { store: 'off' } });
const cp = server.cp;
const token = readFileSync(join(home, 'token'), 'utf8').trim();
const admin = (await cp.auth.listUsers()).find((u) => u.isAdmin)!;

/** A stopped workspace with one conversation of `n` events: turns of a message, text, a tool call and its result. */
async function seed(id: string, n: number): Promise<{ workspace: string; conversation: string }> {
  const project = await cp.store.findOrCreateProject({ name: 'app', source: `/bench/${id}`, sourceKind: 'path' }, () => `prj-${id}`);
  await cp.store.insertWorkspace({ id, name: null, projectId: project.id, provider: 'docker', image: 'bench', branch: null, projectDir: '/workspace/app', status: 'stopped', ownerId: admin.id, size: 'medium', autoStopSeconds: null });
  const conversation = `conv-${id}`;
  const t = Date.now() - n * 1000;
  const events: AnyEvent[] = [];
  const push = (type: AnyEvent['type'], data: unknown) => events.push({ seq: events.length + 1, time: new Date(t + events.length * 1000).toISOString(), conversationId: conversation, type, data } as AnyEvent);
  push('conversation.created', { agent: 'claude', model: 'claude-bench' });
  for (let turn = 0; events.length < n; turn++) {
    const sent = ['message.sent', { queueId: `q${turn}`, text: `Step ${turn}: run the tests and fix what fails` }] as const;
    const said = ['assistant.text', { text: `Running the tests for step ${turn}. `.repeat(1 + (turn % 4)) }] as const;
    const called = ['tool.called', { toolUseId: `t${turn}`, name: 'Bash', input: { command: `npm test -- --grep step-${turn}` } }] as const;
    const result = ['tool.result', { toolUseId: `t${turn}`, output: Array.from({ length: 3 + (turn % 20) }, (_, i) => `  ✔ case ${i} of step ${turn}`).join('\n'), isError: false }] as const;
    const done = ['turn.completed', { result: 'ok', isError: false, costUsd: 0.0012, inputTokens: 1200, outputTokens: 80, durationMs: 4000 }] as const;
    for (const [type, data] of [sent, said, called, result, done]) if (events.length < n) push(type, data);
  }
  await cp.store.insertConversation({ id: conversation, workspaceId: id, agent: 'claude' });
  for (let i = 0; i < events.length; i += 2000) await cp.events.appendMany([{ workspaceId: id, events: events.slice(i, i + 2000) }]);
  const info: ConversationInfo = {
    id: conversation, workspaceId: id, agent: 'claude', model: 'claude-bench', state: 'idle', sessionId: 'bench', lastSeq: events.length,
    queue: [], costUsd: 0, lastMessage: null, createdAt: events[0]!.time, updatedAt: events.at(-1)!.time,
  };
  await cp.store.updateConversationInfo(id, info);
  return { workspace: id, conversation };
}

await cp.store.insertProvider({ name: 'docker', type: 'docker', options: {}, ownerId: admin.id });
const small = await seed('bench-small-0001', 10);
const large = await seed('bench-large-0001', 10_000);

// Initial JavaScript: every script index.html loads, gzipped as a server would send it.
const ui = join(REPO, 'dist', 'ui');
const html = readFileSync(join(ui, 'index.html'), 'utf8');
const scripts = new Set<string>();
// The entry scripts and every module they import statically (route chunks, imported dynamically, come later).
const visit = (file: string) => {
  if (scripts.has(file)) return;
  scripts.add(file);
  const code = readFileSync(join(ui, file), 'utf8');
  for (const m of code.matchAll(/(?:^|[;\n}])\s*import\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+\.js)["']/g)) visit(join(dirname(file), m[1]!));
};
for (const m of html.matchAll(/<script[^>]+src="\.?\/?([^"]+)"/g)) visit(m[1]!);
const initialGz = [...scripts].reduce((sum, s) => sum + gzipSync(readFileSync(join(ui, s)), { level: 9 }).length, 0);

const browser = await chromium.launch({ executablePath: process.env.CLAUDE_VM_TEST_CHROMIUM || '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** From navigation to the newest event's row on screen, in a fresh page with a warm HTTP cache. */
async function openTime(c: { workspace: string; conversation: string }, lastSeq: number): Promise<{ ms: number[]; frames?: number[] }> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.request.post(`${server.url}/api/v1/auth/session`, { data: { token } });
  const ms: number[] = [];
  let frames: number[] | undefined;
  for (let i = 0; i <= RUNS; i++) {
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${server.url}/#/w/${c.workspace}/c/${c.conversation}`);
    await page.waitForSelector(`.conversation[data-last-seq="${lastSeq}"]`);
    await page.waitForFunction(() => (document.querySelector('.conversation .events')?.textContent?.length ?? 0) > 0);
    if (i > 0) ms.push(Date.now() - t0); // the first load fills the cache
    if (i === RUNS && lastSeq > 1000) frames = await scrollFrames(page);
    await page.close();
  }
  await context.close();
  return { ms, frames };
}

/** Scrolls the conversation from the bottom to the top and back in 60 steps, one per animation frame; frame times. */
async function scrollFrames(page: import('playwright-core').Page): Promise<number[]> {
  return page.evaluate(async () => {
    const scroller = document.querySelector<HTMLElement>('.conversation .events')!;
    const times: number[] = [];
    let last = performance.now();
    const frame = () => new Promise<void>((r) => requestAnimationFrame(() => {
      const now = performance.now();
      times.push(now - last);
      last = now;
      r();
    }));
    const max = scroller.scrollHeight - scroller.clientHeight;
    for (const dir of [-1, 1]) {
      for (let i = 1; i <= 30; i++) {
        scroller.scrollTop = dir < 0 ? max * (1 - i / 30) : max * (i / 30);
        await frame();
      }
    }
    // Then as a thumb scrolls: 120 frames of 60 px upwards from the newest event.
    scroller.scrollTop = scroller.scrollHeight;
    await frame();
    const smooth: number[] = [];
    last = performance.now();
    for (let i = 0; i < 120; i++) {
      scroller.scrollTop -= 60;
      await frame();
      smooth.push(times.pop()!);
    }
    return [...times, -1, ...smooth];
  });
}

try {
  const s = await openTime(small, 10);
  const l = await openTime(large, 10_000);
  const all = l.frames ?? [];
  const cut = all.indexOf(-1);
  const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? 0;
  const jumps = all.slice(0, cut);
  const smooth = all.slice(cut + 1);
  const rows: Array<[string, string]> = [
    ['initial JS', `${(initialGz / 1024).toFixed(1)} KB gzipped in ${scripts.size} file(s) (goal ≤ 200 KB)`],
    ['open, 10 events', `${median(s.ms)} ms median of ${RUNS}`],
    ['open, 10,000', `${median(l.ms)} ms median of ${RUNS}   ratio ${(median(l.ms) / median(s.ms)).toFixed(2)}× the 10-event conversation`],
    ['scroll, 10,000', `120 frames of 60 px: frame p95 ${p95(smooth).toFixed(1)} ms, worst ${Math.max(...smooth).toFixed(1)} ms (a 60 Hz frame is 16.7 ms)`],
    ['jump, 10,000', `60 jumps of 1/30 of the conversation: frame p95 ${p95(jumps).toFixed(1)} ms, worst ${Math.max(...jumps).toFixed(1)} ms`],
  ];
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(17)} ${v}`).join('\n') + '\n');
} finally {
  await browser.close();
  await server.close();
}
