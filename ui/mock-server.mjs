#!/usr/bin/env node
/**
 * A stand-in control plane for working on the web UI without Docker or agents: serves dist/ui and answers the API
 * routes the UI uses with made-up data. One conversation has 10,000 events (to see the virtualised list open);
 * another is "working", gains an event every 1.5 s, and its stream is cut every 6 s and resumed with two events
 * sent again (the UI must show each once). Not part of the product.
 *
 *   node ui/mock-server.mjs [--port 7490] [--big 10000] [--refuse-sse]
 *
 * --refuse-sse answers conversation event streams with 403, as a control plane does for a cookie session whose
 * browser sent no Origin: the UI then reads JSON pages.
 */
import { createServer } from 'node:http';
import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '7490' }, big: { type: 'string', default: '10000' }, 'refuse-sse': { type: 'boolean', default: false } },
});
const UI = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'ui');
const CSRF = 'mock-csrf';
const now = Date.now();
const iso = (msAgo) => new Date(now - msAgo).toISOString();

const ws = (id, name, status, extra = {}) => ({
  id, name, status,
  project: { id: 'p-' + id, name, source: `https://github.com/example/${name}.git`, sourceKind: 'git' },
  provider: 'docker', providerType: 'docker', image: 'claude-vm/workspace:latest', branch: 'main', projectDir: `/workspace/${name}`,
  statusReason: null, createdAt: iso(86_400_000 * 3), updatedAt: iso(60_000), startedAt: status === 'running' ? iso(3_600_000) : null,
  size: 'medium', autoStopSeconds: 2700, lastActivityAt: iso(120_000), stoppedAt: null, uptimeSeconds: 5400, costUsd: 0.42, ...extra,
});
let workspaces = [
  ws('brisk-river-1234', 'api-server', 'running'),
  ws('quiet-hill-5678', 'web-frontend', 'stopped', { uptimeSeconds: 86_000, costUsd: 6.3, lastActivityAt: iso(86_400_000) }),
  ws('amber-field-9012', 'data-pipeline', 'error', { statusReason: 'The container exited with code 137 (out of memory).', costUsd: 0 }),
];

/** Conversation events. */
const streams = new Set();
const convs = new Map();
function conv(id, workspaceId, agent, state) {
  const c = { info: { id, workspaceId, agent, model: null, state, sessionId: 's-' + id, lastSeq: 0, queue: [], costUsd: 0, lastMessage: null, createdAt: iso(7_200_000), updatedAt: iso(60_000) }, events: [], waiters: new Set() };
  convs.set(id, c);
  return c;
}
function add(c, type, data) {
  const e = { seq: c.events.length + 1, time: new Date().toISOString(), conversationId: c.info.id, type, data };
  c.events.push(e);
  c.info.lastSeq = e.seq;
  c.info.updatedAt = e.time;
  if (type === 'message.queued') c.info.queue.push({ queueId: data.queueId, text: data.text, queuedAt: e.time });
  if (type === 'message.sent' || type === 'message.cancelled') c.info.queue = c.info.queue.filter((q) => q.queueId !== data.queueId);
  if (type === 'message.sent') c.info.lastMessage = data.text;
  if (type === 'turn.completed') c.info.costUsd += data.costUsd ?? 0;
  for (const w of c.waiters) w(e);
  for (const s of streams) s('conversation', c.info);
  return e;
}

const big = conv('c-big', 'brisk-river-1234', 'claude', 'idle');
add(big, 'conversation.created', { agent: 'claude', model: 'claude-sonnet' });
for (let turn = 0; big.events.length < Number(values.big); turn++) {
  const q = 'q' + turn;
  add(big, 'message.queued', { queueId: q, text: `Step ${turn}: fix the failing test in module ${turn % 17}` });
  add(big, 'message.sent', { queueId: q, text: `Step ${turn}: fix the failing test in module ${turn % 17}` });
  add(big, 'assistant.text', { text: turn % 3 ? `Looking at module ${turn % 17}.` : `I will run the tests first, then fix what fails.\nHere is the plan:\n\n\`\`\`sh\nnpm test -- module${turn % 17}\n\`\`\`\nThen I edit the file.` });
  add(big, 'tool.called', { toolUseId: `t${turn}a`, name: 'Bash', input: { command: `npm test -- module${turn % 17}`, description: 'Run the tests' } });
  add(big, 'tool.result', { toolUseId: `t${turn}a`, output: Array.from({ length: turn % 4 === 0 ? 40 : 3 }, (_, i) => `  ✓ test ${i} passes (${i * 3} ms)`).join('\n'), isError: turn % 9 === 4 });
  add(big, 'tool.called', { toolUseId: `t${turn}b`, name: 'Edit', input: { file_path: `src/module${turn % 17}.ts`, old_string: 'return a - b;', new_string: 'return a + b;' } });
  add(big, 'tool.result', { toolUseId: `t${turn}b`, output: 'The file has been updated.', isError: false });
  add(big, 'turn.completed', { result: 'Done.', isError: false, costUsd: 0.0123, inputTokens: 12_345, outputTokens: 678, durationMs: 14_200 });
}

const live = conv('c-live', 'brisk-river-1234', 'codex', 'working');
add(live, 'conversation.created', { agent: 'codex', model: null });
add(live, 'message.queued', { queueId: 'l1', text: 'Add a health endpoint and a test for it.' });
add(live, 'message.sent', { queueId: 'l1', text: 'Add a health endpoint and a test for it.' });
add(live, 'assistant.text', { text: 'I will add `GET /health` returning `{ok: true}`.' });
add(live, 'tool.called', { toolUseId: 'w1', name: 'Write', input: { file_path: 'src/health.ts', content: "export function health() {\n  return { ok: true };\n}\n" } });
add(live, 'tool.result', { toolUseId: 'w1', output: 'File created successfully at: src/health.ts', isError: false });
add(live, 'approval.requested', { approvalId: 'ap-1', tool: 'Bash', input: { command: 'rm -rf node_modules && npm install', description: 'Reinstall dependencies' } });
add(live, 'message.queued', { queueId: 'l2', text: 'Also update the README when you are done.' });
let tick = 0;
setInterval(() => add(live, 'assistant.text', { text: `Still working (${++tick})… checking ${['routes', 'tests', 'types', 'lint'][tick % 4]}.` }), 1500).unref();

let approvals = [
  { approvalId: 'ap-1', tool: 'Bash', input: { command: 'rm -rf node_modules && npm install', description: 'Reinstall dependencies' }, conversationId: 'c-live', workspaceId: 'brisk-river-1234', requestedAt: iso(30_000) },
  { approvalId: 'ap-2', tool: 'Edit', input: { file_path: 'src/server.ts', old_string: "app.listen(3000);\n", new_string: "app.get('/health', health);\napp.listen(Number(process.env.PORT ?? 3000));\n" }, conversationId: 'c-live', workspaceId: 'brisk-river-1234', requestedAt: iso(10_000) },
];

const files = new Map([
  ['README.md', '# api-server\n\nA small HTTP API.\n'],
  ['src/server.ts', "import { health } from './health';\n\napp.listen(3000);\n"],
  ['src/health.ts', 'export function health() {\n  return { ok: true };\n}\n'],
  ['package.json', '{\n  "name": "api-server"\n}\n'],
]);
let webhookUrl = null;

const DIFF = `diff --git a/src/server.ts b/src/server.ts
index 1111111..2222222 100644
--- a/src/server.ts
+++ b/src/server.ts
@@ -1,3 +1,4 @@
 import { health } from './health';
 
-app.listen(3000);
+app.get('/health', health);
+app.listen(Number(process.env.PORT ?? 3000));
diff --git a/src/health.ts b/src/health.ts
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/src/health.ts
@@ -0,0 +1,3 @@
+export function health() {
+  return { ok: true };
+}
`;

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
const err = (res, status, code, message) => json(res, status, { error: { code, message } });

async function body(req) {
  let s = '';
  for await (const c of req) s += c;
  return s ? JSON.parse(s) : {};
}

function sseHead(res) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
}

function listDir(dir) {
  const prefix = dir === '.' ? '' : dir + '/';
  const names = new Map();
  for (const [p, text] of files) {
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    const i = rest.indexOf('/');
    if (i < 0) names.set(rest, { name: rest, type: 'file', size: text.length, mtime: iso(300_000) });
    else names.set(rest.slice(0, i), { name: rest.slice(0, i), type: 'dir', size: 4096, mtime: iso(300_000) });
  }
  return [...names.values()].sort((a, b) => (a.type === 'dir' ? 0 : 1) - (b.type === 'dir' ? 0 : 1) || a.name.localeCompare(b.name));
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  const authed = (req.headers.cookie ?? '').includes('cvm_session=mock');
  if (!path.startsWith('/api/')) {
    const file = normalize(join(UI, path));
    const serve = file.startsWith(UI + '/') && existsSync(file) && statSync(file).isFile() ? file : join(UI, 'index.html');
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.webmanifest': 'application/manifest+json' };
    res.writeHead(200, { 'Content-Type': types[extname(serve)] ?? 'application/octet-stream' });
    return res.end(readFileSync(serve));
  }
  const route = `${req.method} ${path.replace('/api/v1', '')}`;
  if (route === 'POST /auth/session') {
    const b = await body(req);
    if (!String(b.token).startsWith('cvm_')) return err(res, 401, 'unauthorized', 'That token is not valid.');
    res.setHeader('Set-Cookie', 'cvm_session=mock; Path=/; HttpOnly; SameSite=Strict');
    return json(res, 200, { user: { id: 'u1', name: 'ada', admin: true }, csrfToken: CSRF, expiresAt: iso(-7 * 86_400_000) });
  }
  if (!authed) return err(res, 401, 'unauthorized', 'Missing, invalid, expired or revoked credentials.');
  if (req.method !== 'GET' && req.headers['x-csrf-token'] !== CSRF) return err(res, 403, 'forbidden', 'Missing or wrong CSRF token.');
  let m;
  if (route === 'GET /me') return json(res, 200, { user: { id: 'u1', name: 'ada', admin: true }, scope: 'session', csrfToken: CSRF });
  if (route === 'DELETE /auth/session') {
    res.setHeader('Set-Cookie', 'cvm_session=; Path=/; Max-Age=0');
    return json(res, 200, { ok: true });
  }
  if (route === 'GET /workspaces') return json(res, 200, workspaces);
  if (route === 'GET /stream') {
    sseHead(res);
    const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('workspaces', workspaces);
    send('approvals', approvals);
    streams.add(send);
    const t = setTimeout(() => send('notification', { kind: 'turn.completed', title: 'Done in api-server', body: 'All 42 tests pass.', workspaceId: 'brisk-river-1234', conversationId: 'c-big' }), 2500);
    req.on('close', () => (streams.delete(send), clearTimeout(t)));
    return;
  }
  if (route === 'GET /approvals') return json(res, 200, approvals);
  if ((m = /^POST \/approvals\/(.+)$/.exec(route))) {
    const b = await body(req);
    approvals = approvals.filter((a) => a.approvalId !== m[1]);
    add(live, 'approval.decided', { approvalId: m[1], decision: b.decision, by: 'ada' });
    for (const s of streams) s('approvals', approvals);
    return json(res, 200, { ok: true });
  }
  if (route === 'GET /providers') return json(res, 200, [{ name: 'docker', type: 'docker', options: {}, isolates: true, createdAt: iso(0) }]);
  if (route === 'GET /provider-types') return json(res, 200, [{ type: 'docker', description: 'Docker', isolates: true, options: [], sizes: { small: { cpus: 1, memoryMb: 2048 }, medium: { cpus: 2, memoryMb: 4096 }, large: { cpus: 4, memoryMb: 8192 } }, defaultSize: 'medium' }]);
  if (route === 'POST /workspaces') {
    const b = await body(req);
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    const steps = ['Checking the provider', 'Cloning the repository', 'Creating the container', 'Starting the daemon'];
    for (const step of steps) {
      res.write(JSON.stringify({ progress: { step } }) + '\n');
      await new Promise((r) => setTimeout(r, 400));
    }
    const w = ws('new-' + Date.now().toString(36), b.name || 'new-project', 'running', { uptimeSeconds: 0, costUsd: 0 });
    workspaces = [w, ...workspaces];
    for (const s of streams) s('workspaces', workspaces);
    res.end(JSON.stringify({ result: { workspace: w, action: 'created', notices: [] } }) + '\n');
    return;
  }
  if ((m = /^GET \/workspaces\/([^/]+)$/.exec(route))) {
    const w = workspaces.find((x) => x.id === m[1] || x.name === m[1]);
    return w ? json(res, 200, w) : err(res, 404, 'not_found', `No workspace ${m[1]}.`);
  }
  if ((m = /^POST \/workspaces\/([^/]+)\/(stop|start)$/.exec(route))) {
    const w = workspaces.find((x) => x.id === m[1]);
    w.status = m[2] === 'stop' ? 'stopped' : 'running';
    for (const s of streams) s('workspaces', workspaces);
    return m[2] === 'stop' ? json(res, 200, w) : json(res, 200, { workspace: w, action: 'started', notices: [] });
  }
  if ((m = /^DELETE \/workspaces\/([^/]+)$/.exec(route))) {
    workspaces = workspaces.filter((x) => x.id !== m[1]);
    for (const s of streams) s('workspaces', workspaces);
    return json(res, 200, { id: m[1], purged: url.searchParams.get('purge') === 'true' });
  }
  if ((m = /^GET \/workspaces\/([^/]+)\/changes$/.exec(route))) return json(res, 200, { base: 'a1b2c3d4e5f6', files: [{ path: 'src/server.ts', status: 'modified' }, { path: 'src/health.ts', status: 'added' }, { path: 'notes.txt', status: 'untracked' }], diff: DIFF });
  if ((m = /^POST \/workspaces\/([^/]+)\/git\/commit$/.exec(route))) {
    const b = await body(req);
    return json(res, 200, { commit: 'f00dfeed1234567', pushed: !!b.push, output: `[main f00dfee] ${b.message}\n 2 files changed, 4 insertions(+), 1 deletion(-)` });
  }
  if ((m = /^GET \/workspaces\/([^/]+)\/files$/.exec(route))) {
    const p = url.searchParams.get('path') ?? '.';
    if (files.has(p)) return json(res, 200, { path: '/workspace/x/' + p, type: 'file', size: files.get(p).length, contentBase64: Buffer.from(files.get(p)).toString('base64') });
    return json(res, 200, { path: '/workspace/x/' + p, type: 'dir', entries: listDir(p) });
  }
  if ((m = /^PUT \/workspaces\/([^/]+)\/files$/.exec(route))) {
    const b = await body(req);
    files.set(b.path, Buffer.from(b.contentBase64, 'base64').toString());
    return json(res, 200, { path: b.path, size: files.get(b.path).length });
  }
  if ((m = /^DELETE \/workspaces\/([^/]+)\/files$/.exec(route))) {
    files.delete(url.searchParams.get('path'));
    return json(res, 200, { deleted: url.searchParams.get('path') });
  }
  if (route === 'GET /conversations') return json(res, 200, [...convs.values()].map((c) => c.info).filter((c) => !url.searchParams.get('workspace') || c.workspaceId === url.searchParams.get('workspace')));
  if (route === 'POST /conversations') {
    const b = await body(req);
    const c = conv('c-' + Date.now().toString(36), b.workspace, b.agent ?? 'claude', 'idle');
    add(c, 'conversation.created', { agent: c.info.agent, model: null });
    if (b.message) {
      add(c, 'message.queued', { queueId: 'n1', text: b.message });
      add(c, 'message.sent', { queueId: 'n1', text: b.message });
    }
    return json(res, 201, c.info);
  }
  if ((m = /^GET \/conversations\/([^/]+)$/.exec(route))) {
    const c = convs.get(m[1]);
    return c ? json(res, 200, c.info) : err(res, 404, 'not_found', 'No conversation.');
  }
  if ((m = /^POST \/conversations\/([^/]+)\/messages$/.exec(route))) {
    const c = convs.get(m[1]);
    const b = await body(req);
    const queueId = 'm' + Date.now().toString(36);
    add(c, 'message.queued', { queueId, text: b.text });
    if (c.info.state === 'idle') setTimeout(() => add(c, 'message.sent', { queueId, text: b.text }), 300);
    return json(res, 202, { queueId });
  }
  if ((m = /^DELETE \/conversations\/([^/]+)\/messages\/(.+)$/.exec(route))) {
    const c = convs.get(m[1]);
    if (!c.info.queue.some((q) => q.queueId === m[2])) return err(res, 409, 'wrong_state', 'That message was already sent.');
    add(c, 'message.cancelled', { queueId: m[2] });
    return json(res, 200, { cancelled: m[2] });
  }
  if ((m = /^POST \/conversations\/([^/]+)\/interrupt$/.exec(route))) {
    const c = convs.get(m[1]);
    c.info.state = 'idle';
    add(c, 'turn.interrupted', { reason: 'interrupted by ada' });
    return json(res, 200, { interrupted: true });
  }
  if ((m = /^GET \/conversations\/([^/]+)\/events$/.exec(route))) {
    const c = convs.get(m[1]);
    if (!c) return err(res, 404, 'not_found', 'No conversation.');
    const from = Number(url.searchParams.get('from') ?? 1);
    if ((req.headers.accept ?? '').includes('text/event-stream') && values['refuse-sse']) return err(res, 403, 'forbidden', 'Cross-origin request refused.');
    if (!(req.headers.accept ?? '').includes('text/event-stream')) return json(res, 200, c.events.slice(from - 1, from - 1 + Number(url.searchParams.get('limit') ?? 1000)));
    sseHead(res);
    const write = (e) => res.write(`id: ${e.seq}\nevent: event\ndata: ${JSON.stringify(e)}\n\n`);
    // Resend two events the client has already seen: it must not show them twice.
    for (const e of c.events.slice(Math.max(0, from - 3))) write(e);
    c.waiters.add(write);
    // The live conversation's stream is cut now and then: the client resumes from where it was.
    const cut = c === live ? setTimeout(() => res.destroy(), 6000) : undefined;
    req.on('close', () => (c.waiters.delete(write), clearTimeout(cut)));
    return;
  }
  if (route === 'GET /notifications') return json(res, 200, { webhookUrl, vapidPublicKey: 'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U', subscriptions: 0 });
  if (route === 'PUT /notifications') {
    webhookUrl = (await body(req)).webhookUrl;
    return json(res, 200, { webhookUrl });
  }
  if (route === 'POST /notifications/test') {
    for (const s of streams) s('notification', { kind: 'turn.completed', title: 'claude-vm test', body: 'Notifications reach you.', workspaceId: '', conversationId: '' });
    return json(res, 200, { push: 0, webhook: !!webhookUrl });
  }
  return err(res, 404, 'not_found', `No mock route ${route}.`);
});
server.listen(Number(values.port), '127.0.0.1', () => console.log(`mock control plane on http://127.0.0.1:${values.port}`));
