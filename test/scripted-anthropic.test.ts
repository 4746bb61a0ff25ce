/**
 * Drives the REAL Claude Code CLI (pinned 2.1.330) offline against test/support/scripted-anthropic.ts, in the mode
 * the workspace daemon will use: `claude -p --input-format stream-json --output-format stream-json --verbose
 * --dangerously-skip-permissions`, one long-lived process, user messages written to stdin as NDJSON.
 *
 * Observed with 2.1.330 (each one is asserted below):
 *  - It runs as a non-root user (here `setpriv` to nobody) without IS_SANDBOX; as root,
 *    --dangerously-skip-permissions needs IS_SANDBOX=1. Env: ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY,
 *    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1, HOME. Only POST /v1/messages?beta=true reaches the server.
 *  - Output per user message: `system/init` (again for EVERY user message, same session_id), then `assistant`
 *    (one per content block, message.stop_reason null), `user` (tool_result + `tool_use_result`), …, and one
 *    `result/success` {result, is_error, num_turns, total_cost_usd, usage, modelUsage, session_id, …}.
 *    The user's own stdin message is not echoed.
 *  - A message written WHILE a turn runs (no `priority`, or priority 'next'):
 *      · turn that still makes another model request (it called a tool): the message is folded into that
 *        request as a `role:"system"` message "The user sent a new message while you were working:\n<text>…";
 *        the turn ends with ONE result, and the message never becomes a turn of its own. This is probably
 *        the earlier "never answered" observation: it is answered, but only inside the running turn;
 *      · turn with no further model request (text only): it is answered as its own turn after the current one.
 *    priority 'later' always waits for its own turn; priority 'now' interrupts the running turn
 *    (`result/error_during_execution`) and then answers the new message.
 *  - `--resume <session_id>` in a new process keeps the same session_id and sends the old history to the model;
 *    an unknown id exits 1 ("No conversation found with session ID: …") after a `result/error_during_execution`.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pinnedCli } from './support/pinned-cli.js';
import { NO_TURN_TEXT, ScriptedAnthropic } from './support/scripted-anthropic.js';

const VERSION = '2.1.330';
const TIMEOUT = 120_000;
let claudeBin = process.env.CLAUDE_VM_TEST_CLAUDE_BIN ?? '';

before(() => {
  if (claudeBin) return;
  claudeBin = pinnedCli('@anthropic-ai/claude-code', VERSION, 'claude');
});

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/**
 * Root drops to nobody (Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX=1), if
 * setpriv exists and nobody can reach the temp dir (a private TMPDIR would break its project dir); else IS_SANDBOX=1.
 */
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const asNobody = process.getuid?.() === 0 && spawnSync('setpriv', [...NOBODY, 'test', '-x', tmpdir()]).status === 0;

/** One long-lived `claude -p` stream-json process in a fresh HOME and project dir. */
class Claude {
  readonly events: any[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(server: ScriptedAnthropic, readonly project: string, home: string, extraArgs: string[] = []) {
    const args = ['-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose'];
    args.push('--dangerously-skip-permissions', ...extraArgs);
    // A minimal env: nothing from the outer environment (ANTHROPIC_*, CLAUDE_*) may leak in.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      ANTHROPIC_BASE_URL: server.url,
      ANTHROPIC_API_KEY: 'test-key',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    };
    if (process.getuid?.() === 0 && !asNobody) env.IS_SANDBOX = '1';
    this.child = asNobody
      ? spawn('setpriv', [...NOBODY, claudeBin, ...args], { cwd: project, env })
      : spawn(claudeBin, args, { cwd: project, env });
    let buf = '';
    this.child.stdout.on('data', (d: Buffer) => {
      buf += d;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
        if (buf.slice(0, i).trim()) this.events.push(JSON.parse(buf.slice(0, i)));
      }
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d));
    this.child.stdin.on('error', () => {}); // EPIPE when claude exits early (e.g. bad --resume); the exit code tells
    this.exited = new Promise((r) => this.child.on('close', (code) => r(code)));
  }

  static async start(server: ScriptedAnthropic, extraArgs: string[] = [], dirs?: { project: string; home: string }) {
    if (!dirs) {
      const root = mkdtempSync(join(tmpdir(), 'cvm-claude-'));
      roots.push(root);
      dirs = { project: join(root, 'project'), home: join(root, 'home') };
      mkdirSync(dirs.project);
      mkdirSync(dirs.home);
      if (asNobody) for (const d of [root, dirs.project, dirs.home]) chownSync(d, 65534, 65534);
    }
    return Object.assign(new Claude(server, dirs.project, dirs.home, extraArgs), { home: dirs.home });
  }

  send(text: string, extra: Record<string, unknown> = {}): void {
    this.child.stdin.write(JSON.stringify({ type: 'user', message: { role: 'user', content: text }, ...extra }) + '\n');
  }

  get results(): any[] {
    return this.events.filter((e) => e.type === 'result');
  }

  /** Wait until `count` result events have arrived (fails early, with stderr, if the process dies). */
  async waitForResults(count: number, timeoutMs = 60_000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    let dead = false;
    void this.exited.then(() => (dead = true));
    while (this.results.length < count) {
      if (dead || Date.now() > deadline) {
        throw new Error(`expected ${count} results, got ${this.results.length}; stderr:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.results;
  }

  end(): Promise<number | null> {
    this.child.stdin.end();
    return this.exited;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** The content blocks of a request's messages, flattened, to look for tool_results and texts. */
const blocks = (body: any): any[] =>
  body.messages.flatMap((m: any) => (typeof m.content === 'string' ? [{ type: 'text', text: m.content, role: m.role }] : m.content.map((b: any) => ({ ...b, role: m.role }))));
const lastUserText = (body: any): string =>
  blocks(body).filter((b) => b.role === 'user' && b.type === 'text').at(-1)?.text;

test('server speaks the Messages API without Claude Code: JSON, side calls, empty queue, probes', async () => {
  const server = await ScriptedAnthropic.start();
  try {
    server.enqueue({ text: 'hi', tools: [{ name: 'Bash', input: { command: 'true' }, id: 'toolu_x' }] });
    const post = (body: unknown) =>
      fetch(`${server.url}/v1/messages?beta=true`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json() as any);
    const tools = [{ name: 'Bash', input_schema: {} }];
    const side = await post({ model: 'm', messages: [], stream: false }); // no tools: must not eat the turn
    assert.equal(side.content[0].text, 'ok');
    const turn = await post({ model: 'm', messages: [], tools, stream: false });
    assert.equal(turn.stop_reason, 'tool_use');
    assert.deepEqual(turn.content[1], { type: 'tool_use', id: 'toolu_x', name: 'Bash', input: { command: 'true' } });
    const empty = await post({ model: 'm', messages: [], tools, stream: false });
    assert.deepEqual([empty.content[0].text, empty.stop_reason], [NO_TURN_TEXT, 'end_turn']);
    assert.equal((await fetch(server.url, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${server.url}/v1/nope`)).status, 404);
    assert.deepEqual(server.requests.map((r) => r.kind), ['side', 'turn', 'turn']);
    assert.deepEqual(server.probes, [{ method: 'HEAD', path: '/' }, { method: 'GET', path: '/v1/nope' }]);
  } finally {
    await server.close();
  }
});

test('real Claude Code: Write and Bash tool calls, a second message in the same process, exit 0', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedAnthropic.start();
  const claude = await Claude.start(server);
  t.after(() => (claude.kill(), server.close()));
  const file = join(claude.project, 'hello.txt');
  server.enqueue(
    { text: 'Writing the file.', tools: [{ name: 'Write', input: { file_path: file, content: 'hello from the script\n' }, id: 'toolu_write' }] },
    { tools: [{ name: 'Bash', input: { command: 'echo hi > ran.txt', description: 'write ran.txt' }, id: 'toolu_bash' }] },
    { text: 'done' },
  );
  claude.send('please write hello.txt and run echo');
  const [result] = await claude.waitForResults(1);

  assert.equal(readFileSync(file, 'utf8'), 'hello from the script\n');
  assert.equal(readFileSync(join(claude.project, 'ran.txt'), 'utf8'), 'hi\n');

  const init = claude.events[0];
  assert.deepEqual([init.type, init.subtype, init.claude_code_version, init.permissionMode], ['system', 'init', VERSION, 'bypassPermissions']);
  assert.ok(init.tools.includes('Write') && init.tools.includes('Bash'), init.tools);
  const sid = init.session_id;
  assert.match(sid, /^[0-9a-f-]{36}$/);
  assert.ok(claude.events.every((e) => e.session_id === sid), 'every event carries the session_id');
  // One `assistant` event per content block: the text and the tool_use of turn 1 share a message id.
  const assistant = claude.events.filter((e) => e.type === 'assistant');
  assert.deepEqual(assistant.map((e) => e.message.content.map((b: any) => b.type).join()), ['text', 'tool_use', 'tool_use', 'text']);
  assert.equal(assistant[0].message.id, assistant[1].message.id);
  const toolUses = claude.events.filter((e) => e.type === 'assistant').flatMap((e) => e.message.content).filter((b) => b.type === 'tool_use');
  assert.deepEqual(toolUses.map((b) => [b.id, b.name]), [['toolu_write', 'Write'], ['toolu_bash', 'Bash']]);
  const toolResults = claude.events.filter((e) => e.type === 'user').flatMap((e) => e.message.content);
  assert.deepEqual(toolResults.map((b) => [b.type, b.tool_use_id, b.is_error ?? false]), [['tool_result', 'toolu_write', false], ['tool_result', 'toolu_bash', false]]);
  assert.equal(claude.events.find((e) => e.type === 'user').tool_use_result.type, 'create'); // Write's structured result
  assert.equal(result.subtype, 'success');
  assert.equal(result.is_error, false);
  assert.equal(result.result, 'done');
  assert.equal(result.num_turns, 3);
  assert.equal(result.stop_reason, 'end_turn');
  assert.equal(typeof result.total_cost_usd, 'number');
  assert.equal(typeof result.usage.input_tokens, 'number');
  assert.equal(typeof result.duration_ms, 'number');

  // The server got each tool_result back, with the content the stream-json output reported.
  const reqs = server.turnRequests;
  assert.equal(reqs.length, 3);
  assert.equal(lastUserText(reqs[0]!.body), 'please write hello.txt and run echo');
  for (const [i, id] of [[1, 'toolu_write'], [2, 'toolu_bash']] as const) {
    const seen = blocks(reqs[i]!.body).find((b) => b.type === 'tool_result' && b.tool_use_id === id);
    assert.ok(seen, `request ${i} carries the tool_result of ${id}`);
    assert.deepEqual(seen.content, toolResults.find((b) => b.tool_use_id === id).content);
  }
  assert.match(JSON.stringify(blocks(reqs[1]!.body).find((b) => b.tool_use_id === 'toolu_write').content), /hello\.txt/);
  assert.equal(reqs[0]!.headers['x-api-key'], 'test-key');

  // Multi-turn: a second message on the same stdin gets its own scripted answer, in the same session.
  server.enqueue({ text: 'second answer' });
  claude.send('and a second question');
  const second = (await claude.waitForResults(2))[1];
  assert.deepEqual([second.subtype, second.result, second.session_id], ['success', 'second answer', sid]);
  assert.equal(lastUserText(server.turnRequests[3]!.body), 'and a second question');
  assert.ok(blocks(server.turnRequests[3]!.body).some((b) => b.role === 'assistant' && b.text === 'done'), 'history is kept');

  assert.equal(await claude.end(), 0);
  t.diagnostic(`side requests: ${server.requests.filter((r) => r.kind === 'side').length}, probes: ${JSON.stringify(server.probes)}`);
});

test('a message sent while a text-only turn runs is answered as its own turn afterwards', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedAnthropic.start();
  const claude = await Claude.start(server);
  t.after(() => (claude.kill(), server.close()));
  server.enqueue({ text: 'slow answer', delayMs: 2000 }, { text: 'queued answer' });
  claude.send('first');
  await server.waitForRequests(1);
  claude.send('sent mid-turn');
  const results = await claude.waitForResults(2);
  assert.deepEqual(results.map((r) => r.result), ['slow answer', 'queued answer']);
  assert.equal(lastUserText(server.turnRequests[1]!.body), 'sent mid-turn');
  assert.equal(await claude.end(), 0);
});

test('a message sent while a tool-using turn runs is folded into that turn, not answered on its own', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedAnthropic.start();
  const claude = await Claude.start(server);
  t.after(() => (claude.kill(), server.close()));
  server.enqueue({ tools: [{ name: 'Bash', input: { command: 'true' } }], delayMs: 2000 }, { text: 'after tool' });
  claude.send('first');
  await server.waitForRequests(1);
  claude.send('sent mid-turn');
  const [first] = await claude.waitForResults(1);
  assert.equal(first.result, 'after tool');
  // The tool_result request carries the mid-turn message as a system note, inside the same turn.
  const note = server.turnRequests[1]!.body.messages.at(-1);
  assert.equal(note.role, 'system');
  assert.match(JSON.stringify(note.content), /The user sent a new message while you were working:\\nsent mid-turn/);
  // The next message is answered next: the mid-turn message was not queued as a turn of its own.
  server.enqueue({ text: 'third answer' });
  claude.send('third');
  const results = await claude.waitForResults(2);
  assert.deepEqual(results.map((r) => r.result), ['after tool', 'third answer']);
  assert.equal(lastUserText(server.turnRequests[2]!.body), 'third');
  assert.equal(server.turnRequests.length, 3);
  assert.equal(await claude.end(), 0);
});

test("priority 'now' interrupts the running turn; priority 'later' waits for its own turn", { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedAnthropic.start();
  const claude = await Claude.start(server);
  t.after(() => (claude.kill(), server.close()));
  server.enqueue({ tools: [{ name: 'Bash', input: { command: 'true' } }], delayMs: 5000 }, { text: 'answer to now' });
  claude.send('first');
  await server.waitForRequests(1);
  claude.send('urgent', { priority: 'now' });
  const [interrupted, answered] = await claude.waitForResults(2);
  assert.deepEqual([interrupted.subtype, interrupted.is_error], ['error_during_execution', true]);
  assert.deepEqual([answered.subtype, answered.result], ['success', 'answer to now']);
  assert.equal(lastUserText(server.turnRequests[1]!.body), 'urgent');

  server.enqueue({ tools: [{ name: 'Bash', input: { command: 'true' } }], delayMs: 1000 }, { text: 'tool done' }, { text: 'answer to later' });
  claude.send('again');
  await server.waitForRequests(3);
  claude.send('not urgent', { priority: 'later' });
  const results = await claude.waitForResults(4);
  assert.deepEqual(results.slice(2).map((r) => r.result), ['tool done', 'answer to later']);
  assert.equal(lastUserText(server.turnRequests.at(-1)!.body), 'not urgent');
  assert.equal(await claude.end(), 0);
});

test('--resume <session_id> continues the conversation in a new process', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedAnthropic.start();
  t.after(() => server.close());
  server.enqueue({ text: 'one' }, { text: 'two' });
  const a = await Claude.start(server);
  t.after(() => a.kill());
  a.send('remember me');
  const [r1] = await a.waitForResults(1);
  assert.equal(await a.end(), 0);

  const b = await Claude.start(server, ['--resume', r1.session_id], { project: a.project, home: a.home });
  t.after(() => b.kill());
  b.send('again');
  const [r2] = await b.waitForResults(1);
  assert.deepEqual([r2.result, r2.session_id], ['two', r1.session_id]);
  const texts = blocks(server.turnRequests[1]!.body).filter((x) => x.role !== 'system').map((x) => x.text);
  assert.ok(texts.includes('remember me') && texts.includes('one') && texts.at(-1) === 'again', JSON.stringify(texts));
  assert.equal(await b.end(), 0);

  const c = await Claude.start(server, ['--resume', '00000000-0000-4000-8000-000000000000'], { project: a.project, home: a.home });
  t.after(() => c.kill());
  c.send('lost');
  assert.equal(await c.end(), 1);
  assert.match(c.stderr, /No conversation found with session ID/);
  assert.equal(c.results[0]?.subtype, 'error_during_execution');
});
