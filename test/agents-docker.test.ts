/**
 * Coding agents in Docker workspaces, end to end: the real Claude Code CLI (from the workspace image) driven by
 * the workspace daemon against a scripted Anthropic server on the host. The workspaces use host networking so
 * the container reaches that server on loopback.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, Cli, FOREIGN_IMAGE, IMAGE, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import type { AnyEvent, ConversationInfo } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

const SECRET = 'sk-ant-test-do-not-leak-4242';
let model: ScriptedAnthropic;

before(async () => {
  model = await ScriptedAnthropic.start();
});
after(() => model.close());

async function workspaceWithAgent(): Promise<{ cli: Cli; ws: WorkspaceInfo }> {
  const cli = new Cli();
  await cli.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host']);
  const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'hostnet', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
  await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', `ANTHROPIC_API_KEY=${SECRET}`]);
  return { cli, ws };
}

async function events(cli: Cli, conv: string, from = 1): Promise<AnyEvent[]> {
  const out = (await cli.ok(['logs', conv, '--from', String(from), '--json'])).stdout;
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
}

async function waitFor(cli: Cli, conv: string, done: (es: AnyEvent[]) => boolean, timeoutMs = 60_000): Promise<AnyEvent[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const es = await events(cli, conv);
    if (done(es)) return es;
    if (Date.now() > end) throw new Error(`timed out; events so far:\n${es.map((e) => `${e.seq} ${e.type} ${JSON.stringify(e.data).slice(0, 120)}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const count = (es: AnyEvent[], type: AnyEvent['type']) => es.filter((e) => e.type === type).length;

test('a turn writes a file and runs a command; every tool call is in the log and the secret is nowhere', async () => {
  const { cli, ws } = await workspaceWithAgent();
  model.enqueue(
    { tools: [{ name: 'Write', input: { file_path: `${ws.projectDir}/hello.py`, content: 'print("hi")\n' } }] },
    { tools: [{ name: 'Bash', input: { command: 'python3 hello.py > out.txt && git status --short' } }] },
    { text: 'Wrote hello.py and ran it.' },
  );
  const conv = (await cli.ok(['new-chat', ws.id, '-m', 'write hello.py and run it'])).stdout.trim();
  assert.match(conv, /^c_[0-9a-f]{10}$/);
  const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1);

  assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'hello.py', 'out.txt'])).stdout, 'print("hi")\nhi\n');
  const tools = es.filter((e) => e.type === 'tool.called').map((e) => (e.data as { name: string }).name);
  assert.deepEqual(tools, ['Write', 'Bash']);
  const bash = es.find((e) => e.type === 'tool.result' && (e.data as { output: string }).output.includes('hello.py'));
  assert.ok(bash, 'the Bash tool result (git status) is in the log');
  assert.deepEqual(es.map((e) => e.seq), es.map((_, i) => i + 1), 'sequence numbers start at 1 with no gaps');
  // The model saw the tool results: the agent really ran the tools in the workspace.
  const last = model.turnRequests.at(-1)!.body as { messages: Array<{ content: unknown }> };
  assert.match(JSON.stringify(last.messages), /tool_result/);

  const list = await cli.json<ConversationInfo[]>(['conversations', '-w', ws.id]);
  assert.equal(list[0]?.state, 'idle');
  assert.ok((list[0]?.costUsd ?? 0) > 0, 'cost is tracked');
  assert.equal(list[0]?.lastMessage, 'Wrote hello.py and ran it.');

  const leaks = spawnSync('docker', ['exec', `claude-vm-${ws.id}`, 'grep', '-rl', SECRET, '/workspace'], { encoding: 'utf8' });
  assert.equal(leaks.stdout, '', 'the API key is not on the workspace volume');
  assert.doesNotMatch((await cli.ok(['logs', conv, '--json'])).stdout, new RegExp(SECRET));

  // A model that prints the key (as a prompt-injected one might) still cannot get it into claude-vm's log.
  // (Claude Code's own transcript then holds it; keeping the key out of the agent's reach is the hardening issue.)
  model.enqueue({ tools: [{ name: 'Bash', input: { command: 'echo "key=$ANTHROPIC_API_KEY"' } }] }, { text: 'printed' });
  await cli.ok(['send', conv, 'print your key']);
  await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 2);
  const log = (await cli.ok(['logs', conv, '--json'])).stdout;
  assert.doesNotMatch(log, new RegExp(SECRET));
  assert.match(log, /key=\*\*\*/, 'the printed key is masked in the tool result');
  assert.doesNotMatch((await cli.ok(['agent', 'list', '--json'])).stdout, new RegExp(SECRET));
  await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
});

test('messages sent while the agent works are queued, cancellable, and answered in order; interrupt ends only the turn', async () => {
  const { cli, ws } = await workspaceWithAgent();
  let release!: () => void;
  const firstTurnDone = new Promise<void>((r) => (release = r));
  model.enqueue({ text: 'first answer', hold: firstTurnDone }, { text: 'second answer' }, { text: 'third answer' });
  const conv = (await cli.ok(['new-chat', ws.id, '-m', 'one'])).stdout.trim();
  await waitFor(cli, conv, (e) => count(e, 'message.sent') === 1);
  const q2 = JSON.parse((await cli.ok(['send', conv, 'two', '--json'])).stdout) as { queueId: string };
  const q3 = JSON.parse((await cli.ok(['send', conv, 'drop me', '--json'])).stdout) as { queueId: string };
  await cli.ok(['send', conv, 'three']);
  const mid = await cli.json<ConversationInfo>(['conversations', '-w', ws.id]).then((l) => (l as unknown as ConversationInfo[])[0]!);
  assert.equal(mid.state, 'working');
  assert.deepEqual(mid.queue.map((q) => q.text), ['two', 'drop me', 'three'], 'the queue is visible');
  await cli.ok(['cancel', conv, q3.queueId]);
  assert.ok(q2.queueId);
  release();

  const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 3);
  const sent = es.filter((e) => e.type === 'message.sent').map((e) => (e.data as { text: string }).text);
  assert.deepEqual(sent, ['one', 'two', 'three'], 'each queued message became its own turn, in order');
  const answers = es.filter((e) => e.type === 'assistant.text').map((e) => (e.data as { text: string }).text);
  assert.deepEqual(answers, ['first answer', 'second answer', 'third answer']);

  // Interrupt: a long turn ends early, the conversation goes on.
  model.enqueue({ text: 'this takes forever', delayMs: 60_000 }, { text: 'after the interrupt' });
  await cli.ok(['send', conv, 'slow']);
  await waitFor(cli, conv, (e) => count(e, 'message.sent') === 4);
  await new Promise((r) => setTimeout(r, 1500));
  assert.match((await cli.ok(['interrupt', conv])).stdout, /Interrupted/);
  await waitFor(cli, conv, (e) => count(e, 'turn.interrupted') === 1);
  await cli.ok(['send', conv, 'still there?']);
  const end = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 4);
  assert.equal((end.filter((e) => e.type === 'assistant.text').at(-1)!.data as { text: string }).text, 'after the interrupt');
  await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
});

test('the conversation survives kill -9 of the daemon and a container restart, and resumes the agent session', async () => {
  const { cli, ws } = await workspaceWithAgent();
  model.enqueue({ text: 'remember: blue' });
  const conv = (await cli.ok(['new-chat', ws.id, '-m', 'pick a colour'])).stdout.trim();
  await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1);

  spawnSync('docker', ['exec', `claude-vm-${ws.id}`, 'pkill', '-9', '-f', 'daemon/main.js serve']);
  model.enqueue({ text: 'still blue' });
  await cli.ok(['send', conv, 'what colour?']);
  let es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 2);
  assert.equal(es.filter((e) => e.type === 'conversation.created').length, 1, 'history intact after the daemon restart');

  spawnSync('docker', ['restart', '-t', '2', `claude-vm-${ws.id}`]);
  model.enqueue({ text: 'blue, after a restart' });
  await cli.ok(['send', conv, 'and now?']);
  es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 3);
  const started = es.filter((e) => e.type === 'agent.started').map((e) => (e.data as { resumed: boolean }).resumed);
  assert.deepEqual(started.slice(1), started.slice(1).map(() => true), 'later agent processes resume the session');
  // The model got the earlier exchange back: the session was resumed, not started over.
  const history = JSON.stringify((model.turnRequests.at(-1)!.body as { messages: unknown }).messages);
  assert.match(history, /pick a colour/);
  assert.match(history, /remember: blue/);
  await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
});

test('a follower that drops mid-turn catches up from its last sequence number with no gap and no duplicate', async () => {
  const { cli, ws } = await workspaceWithAgent();
  let release!: () => void;
  model.enqueue(
    { tools: [{ name: 'Bash', input: { command: 'echo step1' } }] },
    { tools: [{ name: 'Bash', input: { command: 'echo step2' } }], hold: new Promise<void>((r) => (release = r)) },
    { text: 'finished' },
  );
  const conv = (await cli.ok(['new-chat', ws.id, '-m', 'do two slow steps'])).stdout.trim();
  const follower = spawn(process.execPath, [BIN, 'logs', conv, '--follow', '--json'], {
    env: { ...process.env, CLAUDE_VM_HOME: cli.home },
  });
  const seen: AnyEvent[] = [];
  let buf = '';
  follower.stdout.on('data', (d: Buffer) => {
    const lines = (buf + d.toString()).split('\n');
    buf = lines.pop()!;
    for (const l of lines.filter(Boolean)) seen.push(JSON.parse(l) as AnyEvent);
  });
  // Drop the connection in the middle of the turn, as a closing laptop would.
  const until = Date.now() + 30_000;
  while (!seen.some((e) => e.type === 'tool.called') && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  follower.kill('SIGKILL');
  await new Promise((r) => follower.once('exit', r));
  release();
  assert.ok(seen.length > 0 && !seen.some((e) => e.type === 'turn.completed'), 'the follower saw part of the turn');

  await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1);
  const rest = await events(cli, conv, seen.at(-1)!.seq + 1);
  const all = [...seen, ...rest];
  assert.deepEqual(all.map((e) => e.seq), all.map((_, i) => i + 1));
  assert.equal(all.at(-1)!.type, 'turn.completed');
  await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
});

test('chat queues typed lines while the agent works and answers them in order', async () => {
  const { cli, ws } = await workspaceWithAgent();
  let release!: () => void;
  model.enqueue({ text: 'working on the first', hold: new Promise<void>((r) => (release = r)) }, { text: 'answer A' }, { text: 'answer B' });
  const conv = (await cli.ok(['new-chat', ws.id, '-m', 'start'])).stdout.trim();
  await waitFor(cli, conv, (e) => count(e, 'message.sent') === 1);
  // Two lines typed at once while the first turn runs, then Ctrl-D (end of input) detaches.
  const chat = await cli.run(['chat', '-c', conv], { input: 'question A\nquestion B\n' });
  release();
  assert.equal(chat.code, 0, chat.stderr);
  assert.match(chat.stderr, /Detached; the agent keeps working/);
  const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 3);
  assert.deepEqual(es.filter((e) => e.type === 'message.sent').map((e) => (e.data as { text: string }).text), ['start', 'question A', 'question B']);
  assert.deepEqual(es.filter((e) => e.type === 'assistant.text').map((e) => (e.data as { text: string }).text), ['working on the first', 'answer A', 'answer B']);
  await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
});

test('codex runs end to end in the workspace the same way, against its own scripted Responses API', async () => {
  const { ScriptedOpenAI } = await import('./support/scripted-openai.js');
  const openai = await ScriptedOpenAI.start();
  try {
    const { cli, ws } = await workspaceWithAgent();
    await cli.ok(['agent', 'set', 'codex', '--base-url', `${openai.url}/v1`, '--model', 'mock-model', '--secret', 'OPENAI_API_KEY=sk-openai-test-9999']);
    openai.enqueue({ tools: [{ name: 'exec_command', arguments: { cmd: 'echo from-codex > codex.txt' } }] }, { text: 'codex wrote it' });
    const conv = (await cli.ok(['new-chat', ws.id, '--agent', 'codex', '-m', 'write codex.txt'])).stdout.trim();
    const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1 || count(e, 'error') > 0);
    assert.equal(count(es, 'turn.completed'), 1, JSON.stringify(es.filter((e) => e.type === 'error')));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'codex.txt'])).stdout, 'from-codex\n');
    assert.ok(es.some((e) => e.type === 'tool.called'), 'the command is in the log');
    assert.equal((es.filter((e) => e.type === 'assistant.text').at(-1)!.data as { text: string }).text, 'codex wrote it');
    assert.doesNotMatch(JSON.stringify(es), /sk-openai-test-9999/);
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await openai.close();
  }
});

test('chat --tui opens the agent TUI in tmux on the same session and holds headless turns back until it closes', async () => {
  const { cli, ws } = await workspaceWithAgent();
  model.enqueue({ text: 'headless before' });
  const conv = (await cli.ok(['new-chat', ws.id, '-m', 'before'])).stdout.trim();
  await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1);
  const sessionId = (await cli.json<ConversationInfo[]>(['conversations', '-w', ws.id]))[0]!.sessionId;

  const host = `cvm-tui-${process.pid}`;
  const tmux = (...a: string[]) => spawnSync('tmux', ['-L', host, ...a], { encoding: 'utf8' });
  try {
    tmux('new-session', '-d', '-x', '120', '-y', '30', `CLAUDE_VM_HOME=${cli.home} ${process.execPath} ${BIN} chat -c ${conv} --tui; sleep 60`);
    const infoOf = async () => (await cli.json<ConversationInfo[]>(['conversations', '-w', ws.id]))[0]!;
    const end = Date.now() + 30_000;
    while ((await infoOf()).state !== 'tui' && Date.now() < end) await new Promise((r) => setTimeout(r, 300));
    assert.equal((await infoOf()).state, 'tui', tmux('capture-pane', '-p').stdout);
    // The TUI is Claude Code itself, resuming the conversation's session, inside the workspace's tmux.
    const ps = (await cli.ok(['exec', ws.id, '--', 'ps', '-eo', 'args'])).stdout;
    assert.match(ps, new RegExp(`claude --dangerously-skip-permissions --resume ${sessionId}`));
    assert.equal((await cli.run(['exec', ws.id, '--', 'tmux', 'has-session', '-t', `tui-${conv}`])).code, 0);

    // A message sent meanwhile waits: two programs never drive one session at once.
    model.enqueue({ text: 'headless after' });
    await cli.ok(['send', conv, 'after']);
    await new Promise((r) => setTimeout(r, 1500));
    const during = await infoOf();
    assert.deepEqual(during.queue.map((q) => q.text), ['after']);

    // Closing the TUI hands the session back and the queued message is answered.
    await cli.ok(['exec', ws.id, '--', 'tmux', 'kill-session', '-t', `tui-${conv}`]);
    const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 2);
    assert.deepEqual(es.filter((e) => e.type.startsWith('tui.')).map((e) => e.type), ['tui.attached', 'tui.detached']);
    assert.equal((es.filter((e) => e.type === 'assistant.text').at(-1)!.data as { text: string }).text, 'headless after');
  } finally {
    tmux('kill-server');
    await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});

test('gemini runs end to end in the workspace against its own scripted API', async () => {
  const { ScriptedGemini } = await import('./support/scripted-gemini.js');
  const gemini = await ScriptedGemini.start();
  try {
    const { cli, ws } = await workspaceWithAgent();
    await cli.ok(['agent', 'set', 'gemini', '--base-url', gemini.url, '--secret', 'GEMINI_API_KEY=gm-test-7777']);
    gemini.enqueue({ tools: [{ name: 'run_shell_command', args: { command: 'echo from-gemini > gemini.txt' } }] }, { text: 'gemini wrote it' });
    const conv = (await cli.ok(['new-chat', ws.id, '--agent', 'gemini', '-m', 'write gemini.txt'])).stdout.trim();
    const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1 || count(e, 'error') > 0);
    assert.equal(count(es, 'turn.completed'), 1, JSON.stringify(es.filter((e) => e.type === 'error')));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'gemini.txt'])).stdout, 'from-gemini\n');
    assert.ok(es.some((e) => e.type === 'tool.called'), 'the command is in the log');
    assert.doesNotMatch(JSON.stringify(es), /gm-test-7777/);
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await gemini.close();
  }
});

test('qwen runs end to end in the workspace against its own scripted Chat Completions API', async () => {
  const { ScriptedChatCompletions } = await import('./support/scripted-chat-completions.js');
  const openai = await ScriptedChatCompletions.start();
  try {
    const { cli, ws } = await workspaceWithAgent();
    await cli.ok(['agent', 'set', 'qwen', '--base-url', `${openai.url}/v1`, '--model', 'mock-model', '--secret', 'OPENAI_API_KEY=qw-test-5555']);
    openai.enqueue({ tools: [{ name: 'run_shell_command', arguments: { command: 'echo from-qwen > qwen.txt' } }] }, { text: 'qwen wrote it' });
    const conv = (await cli.ok(['new-chat', ws.id, '--agent', 'qwen', '-m', 'write qwen.txt'])).stdout.trim();
    const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1 || count(e, 'error') > 0);
    assert.equal(count(es, 'turn.completed'), 1, JSON.stringify(es.filter((e) => e.type === 'error')));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'qwen.txt'])).stdout, 'from-qwen\n');
    assert.doesNotMatch(JSON.stringify(es), /qw-test-5555/);
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await openai.close();
  }
});

test('agent install puts Claude Code into an image that lacks it, and conversations then work there', async () => {
  const cli = new Cli();
  await cli.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host']);
  const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('plain'), '--provider', 'hostnet', '--image', FOREIGN_IMAGE, '--json'])).stdout) as WorkspaceInfo;
  try {
    assert.notEqual((await cli.run(['exec', ws.id, '--', 'sh', '-c', 'command -v claude'])).code, 0, 'the image has no claude');
    const installed = await cli.run(['agent', 'install', 'claude', '-w', ws.id], { timeoutMs: 300_000 });
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, /Installed claude 2\.1\.330/);
    assert.match(installed.stderr, /Installing/, 'progress is shown');

    await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', `ANTHROPIC_API_KEY=${SECRET}`]);
    model.enqueue({ tools: [{ name: 'Bash', input: { command: 'echo installed-agent > proof.txt' } }] }, { text: 'done here too' });
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'prove it'])).stdout.trim();
    const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1 || count(e, 'error') > 0);
    assert.equal(count(es, 'turn.completed'), 1, JSON.stringify(es.filter((e) => e.type === 'error')));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'proof.txt'])).stdout, 'installed-agent\n');
  } finally {
    await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});

test('opencode runs end to end in the workspace against a scripted Chat Completions API', async () => {
  const { ScriptedChatCompletions } = await import('./support/scripted-chat-completions.js');
  const openai = await ScriptedChatCompletions.start();
  try {
    const { cli, ws } = await workspaceWithAgent();
    await cli.ok(['agent', 'set', 'opencode', '--base-url', `${openai.url}/v1`, '--model', 'mock-model', '--secret', 'OPENAI_API_KEY=oc-test-3333']);
    openai.enqueue({ tools: [{ name: 'bash', arguments: { command: 'echo from-opencode > opencode.txt', description: 'write a file' } }] }, { text: 'opencode wrote it' });
    const conv = (await cli.ok(['new-chat', ws.id, '--agent', 'opencode', '-m', 'write opencode.txt'])).stdout.trim();
    const es = await waitFor(cli, conv, (e) => count(e, 'turn.completed') === 1 || count(e, 'error') > 0, 120_000);
    assert.equal(count(es, 'turn.completed'), 1, JSON.stringify(es.filter((e) => e.type === 'error')));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'opencode.txt'])).stdout, 'from-opencode\n', 'written in the project directory');
    assert.doesNotMatch(JSON.stringify(es), /oc-test-3333/);
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await openai.close();
  }
});
