/**
 * Drives the REAL Qwen Code CLI (pinned 0.24.4) through src/daemon/agents/qwen.ts, offline, against
 * test/support/scripted-chat-completions.ts. The driver is used directly, with a fake DriverEvents that records
 * every call.
 *
 * As root, qwen runs as nobody: a `qwen` wrapper first on the launch PATH chowns $QWEN_HOME and execs `setpriv`
 * (in a workspace the daemon and the agent are the same non-root user, so the driver drops nothing).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pinnedCli } from './support/pinned-cli.js';
import { GATE_PROBES, NOBODY, Recorder, asNobody, assertGated, tempRoot } from './support/driver-harness.js';
import type { AgentDriver, AgentLaunch } from '../src/daemon/agents/driver.js';
import { qwenAgent } from '../src/daemon/agents/qwen.js';
import { NO_TURN_TEXT, ScriptedChatCompletions } from './support/scripted-chat-completions.js';

const VERSION = '0.24.4';
const TIMEOUT = 180_000;
const API_KEY = 'sk-scripted-secret-456';
let qwenBin = process.env.CLAUDE_VM_TEST_QWEN_BIN ?? '';

before(() => {
  if (qwenBin) return;
  qwenBin = pinnedCli('@qwen-code/qwen-code', VERSION, 'qwen');
});




/** A project dir, a state dir and a HOME (owned by nobody when dropping root), and the launch for them. */
function setup(server: ScriptedChatCompletions, model: string | null): AgentLaunch {
  const root = tempRoot('cvm-qwen-');
  const dirs = ['project', 'state', 'home', 'bin'].map((d) => join(root, d));
  dirs.forEach((d) => mkdirSync(d));
  if (asNobody) for (const d of [root, ...dirs.slice(0, 3)]) chownSync(d, 65534, 65534);
  const [cwd, stateDir, home, bin] = dirs as [string, string, string, string];
  const exec = asNobody ? `chown -R 65534:65534 "$QWEN_HOME" && exec setpriv ${NOBODY.join(' ')} ${qwenBin}` : `exec ${qwenBin}`;
  writeFileSync(join(bin, 'qwen'), `#!/bin/sh\n${exec} "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: home, OPENAI_BASE_URL: `${server.url}/v1`, OPENAI_API_KEY: API_KEY, OPENAI_MODEL: 'env-model' };
  return { cwd, env, model, sessionId: null, stateDir };
}

/** The conversation's text messages in a chat request (user/assistant), skipping qwen's injected reminders. */
const said = (body: any, role: string): string[] =>
  body.messages.filter((m: any) => m.role === role).flatMap((m: any) =>
    (typeof m.content === 'string' ? [m.content] : (m.content ?? []).map((c: any) => c.text ?? '')).filter((t: string) => t && !t.startsWith('<system-reminder>')));

test('scripted chat completions: SSE chunks, tool call arguments in pieces, [DONE], errors, empty queue', async () => {
  const server = await ScriptedChatCompletions.start();
  try {
    server.enqueue({ text: 'hello', tools: [{ name: 'run_shell_command', arguments: { command: 'true' }, id: 'c1' }] }, { error: { status: 400, message: 'nope' } });
    const post = (body: unknown) => fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
    const res = await post({ model: 'm', stream: true, messages: [] });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const datas = (await res.text()).trim().split('\n\n').map((c) => c.slice('data: '.length));
    assert.equal(datas.at(-1), '[DONE]');
    const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
    const deltas = chunks.flatMap((c) => c.choices.map((x: any) => x.delta));
    assert.equal(deltas.map((d) => d.content ?? '').join(''), 'hello');
    const calls = deltas.flatMap((d) => d.tool_calls ?? []);
    assert.deepEqual([calls[0].id, calls[0].function.name], ['c1', 'run_shell_command']);
    assert.equal(calls.map((c: any) => c.function.arguments).join(''), '{"command":"true"}');
    assert.equal(chunks.flatMap((c) => c.choices).find((x: any) => x.finish_reason)?.finish_reason, 'tool_calls');
    assert.ok(chunks.at(-1).usage.completion_tokens > 0);
    const failed = await post({ model: 'm', stream: true, messages: [] });
    assert.deepEqual([failed.status, (await failed.json()).error.message], [400, 'nope']);
    const empty = await (await post({ model: 'm', stream: false, messages: [] })).json();
    assert.deepEqual([empty.choices[0].message.content, empty.choices[0].finish_reason], [NO_TURN_TEXT, 'stop']);
    assert.equal(server.requests.length, 3);
    assert.equal((await fetch(`${server.url}/v1/nothing`)).status, 404);
    assert.deepEqual(server.probes, [{ method: 'GET', path: '/v1/nothing' }]);
  } finally {
    await server.close();
  }
});

test('real qwen: a shell command, a second turn with history, an interrupt, then the session goes on', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedChatCompletions.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const ev = new Recorder();
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const driver = qwenAgent.create(launch, ev);
  drivers.push(driver);

  // Turn 1: the model runs a shell command that writes a file, then answers.
  server.enqueue({ text: 'Writing it.', tools: [{ name: 'run_shell_command', arguments: { command: 'echo hello > made.txt' }, id: 'call_w' }] }, { text: 'done' });
  driver.send('please make the file');
  await ev.turns(1);
  const made = join(launch.cwd, 'made.txt');
  assert.equal(readFileSync(made, 'utf8'), 'hello\n');
  if (asNobody) assert.equal(statSync(made).uid, 65534, 'qwen ran as nobody');

  assert.equal(ev.sessions.length, 1);
  const sessionId = ev.sessions[0]!;
  assert.match(sessionId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(ev.events().map((e) => e.type), [
    'agent.started', 'session.started', 'assistant.text', 'tool.called', 'tool.result', 'assistant.text', 'turn.completed',
  ]);
  assert.equal(ev.events('agent.started')[0]!.data.resumed, false);
  assert.equal(ev.events('session.started')[0]!.data.sessionId, sessionId);
  const [called] = ev.events('tool.called');
  const [result] = ev.events('tool.result');
  assert.deepEqual(called!.data, { toolUseId: 'call_w', name: 'run_shell_command', input: { command: 'echo hello > made.txt' } });
  assert.equal(result!.data.toolUseId, 'call_w');
  assert.equal(result!.data.isError, false);
  assert.deepEqual(ev.events('assistant.text').map((e) => e.data.text), ['Writing it.', 'done']);
  const completed = ev.events('turn.completed')[0]!.data;
  assert.deepEqual([completed.result, completed.isError, completed.costUsd], ['done', false, null]);
  assert.ok(completed.inputTokens > 0 && completed.outputTokens > 0 && completed.durationMs! >= 0, JSON.stringify(completed));
  assert.equal(ev.count('exited'), 0, 'the process stays up between turns');
  assert.deepEqual(ev.calls.at(-1), { kind: 'turnEnded' });

  // What qwen sent: our key, our model (launch.model wins over OPENAI_MODEL), the output under the call id.
  assert.equal(server.requests.length, 2, 'no side calls (memory extraction is off)');
  assert.equal(server.requests[0]!.headers.authorization, `Bearer ${API_KEY}`);
  assert.equal(server.requests[0]!.body.model, 'scripted-model');
  assert.ok(server.requests[0]!.body.tools.some((x: any) => x.function?.name === 'run_shell_command'));
  assert.ok(server.requests[1]!.body.messages.some((m: any) => m.role === 'tool' && m.tool_call_id === 'call_w'));
  const settings = readFileSync(join(launch.stateDir, 'qwen-home', 'settings.json'), 'utf8');
  assert.ok(!settings.includes(API_KEY), 'the key stays in the env');

  // Turn 2, same process: the history goes with it.
  server.enqueue({ text: 'second answer' });
  driver.send('-a second question, starting with a dash');
  await ev.turns(2);
  assert.equal(ev.events('agent.started').length, 1);
  const body2 = server.requests[2]!.body;
  assert.deepEqual(said(body2, 'user').slice(-2), ['please make the file', '-a second question, starting with a dash']);
  assert.deepEqual(said(body2, 'assistant'), ['Writing it.', 'done']);
  assert.equal(ev.events('turn.completed')[1]!.data.result, 'second answer');

  // Turn 3: interrupt while a long command runs.
  const long = `sleep 30.${process.pid}`; // unique, so pgrep below cannot see another run's command
  server.enqueue({ tools: [{ name: 'run_shell_command', arguments: { command: `echo started && ${long} && echo end > end.txt` } }] });
  driver.send('run something long');
  await ev.until('the long command to start', () => spawnSync('pgrep', ['-f', long]).status === 0);
  await driver.interrupt();
  assert.deepEqual(ev.events('turn.interrupted').map((e) => e.data), [{ reason: 'interrupted by the user' }]);
  assert.equal(ev.events('turn.completed').length, 2);
  assert.equal(ev.count('turnEnded'), 3);
  // SIGINT is enough: qwen dies of it (no SIGKILL needed), and the exit comes before the turn's end.
  assert.deepEqual(ev.calls.slice(-2), [{ kind: 'exited', code: null, signal: 'SIGINT' }, { kind: 'turnEnded' }]);
  // The command is stopped too (its process group was signalled; it may take a moment to be gone).
  await ev.until('the long command to be stopped too', () => spawnSync('pgrep', ['-f', long]).status !== 0);
  assert.ok(!existsSync(join(launch.cwd, 'end.txt')));
  await driver.interrupt(); // nothing running: a no-op

  // A NEW driver resumed from the session id (as the conversation does after an exit): the history survives.
  const ev2 = new Recorder();
  const driver2 = qwenAgent.create({ ...launch, sessionId }, ev2);
  drivers.push(driver2);
  server.enqueue({ text: 'still here' });
  driver2.send('are you there?');
  await ev2.turns(1);
  assert.equal(ev2.events('agent.started')[0]!.data.resumed, true);
  assert.equal(ev2.sessions.length, 0, 'resumed, not a new session');
  assert.equal(ev2.events('turn.completed')[0]!.data.result, 'still here');
  const last = server.requests.at(-1)!.body;
  assert.deepEqual(said(last, 'user').slice(0, 2), ['please make the file', '-a second question, starting with a dash']);
  assert.equal(said(last, 'user').at(-1), 'are you there?');
  assert.ok(said(last, 'assistant').includes('second answer'));

  await driver2.stop();
  assert.deepEqual(ev2.calls.at(-1), { kind: 'exited', code: 0, signal: null });

  const all = JSON.stringify([ev.calls, ev2.calls]);
  assert.ok(!all.includes(API_KEY) && !all.includes(launch.env.OPENAI_BASE_URL!), 'no env value in any event');
});

test('real qwen: a model error ends the turn with an error, and the model falls back to OPENAI_MODEL', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedChatCompletions.start();
  t.after(() => server.close());
  const launch = setup(server, null);
  const ev = new Recorder();
  const driver = qwenAgent.create(launch, ev);
  t.after(() => driver.stop());
  server.enqueue({ error: { status: 400, message: 'scripted failure' } });
  driver.send('hello?');
  await ev.turns(1);
  assert.equal(server.requests[0]!.body.model, 'env-model');
  // qwen does not retry a 400; it shows the error as assistant text too, and ends the turn with an error result.
  assert.equal(server.requests.length, 1);
  assert.deepEqual(ev.events().map((e) => e.type), ['agent.started', 'session.started', 'assistant.text', 'error', 'turn.completed']);
  assert.equal(ev.events('session.started')[0]!.data.model, 'env-model');
  assert.match(ev.events('error')[0]!.data.message, /400 scripted failure/);
  assert.deepEqual(ev.events('turn.completed').map((e) => [e.data.result, e.data.isError]), [['', true]]);
  assert.deepEqual(ev.calls.at(-1), { kind: 'turnEnded' });
  assert.equal(ev.count('exited'), 0, 'still up for the next message');

  server.enqueue({ text: 'fine now' });
  driver.send('again');
  await ev.turns(2);
  assert.equal(ev.events('turn.completed')[1]!.data.result, 'fine now');
});

test('real qwen: every shell command meets the approval gate; a refusal stops it and the model is told why', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedChatCompletions.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const ev = new Recorder();
  const driver = qwenAgent.create(launch, ev);
  t.after(() => driver.stop());
  const shell = (id: string, command: string) => ({ tools: [{ name: 'run_shell_command', arguments: { command }, id }] });
  const toolMessage = (id: string) => server.requests.flatMap((r) => r.body.messages).find((m: any) => m.role === 'tool' && m.tool_call_id === id);

  // A force push asks the user, who says no: nothing of the line runs, and the model reads the refusal.
  server.enqueue(shell('call_push', GATE_PROBES.push), shell('call_sudo', GATE_PROBES.sudo), shell('call_cat', 'cat notes.txt'), { text: 'ok' });
  writeFileSync(join(launch.cwd, 'notes.txt'), 'read me\n');
  if (asNobody) chownSync(join(launch.cwd, 'notes.txt'), 65534, 65534);
  driver.send('push it');
  await ev.turns(1);
  // qwen deems `cat` read-only, yet it still comes to the gate.
  assertGated(ev, launch.cwd, ['call_push', 'call_sudo', 'call_cat'].map((id) => JSON.stringify(toolMessage(id))), 'cat notes.txt', /read me/);
  const results = ev.events('tool.result');
  assert.deepEqual(results.map((r) => [r.data.toolUseId, r.data.isError]), [['call_push', true], ['call_sudo', true], ['call_cat', false]]);

  // The same line, approved this time, runs.
  ev.userDecision = 'allow';
  server.enqueue(shell('call_push2', GATE_PROBES.push), { text: 'pushed' });
  driver.send('push it, I approve');
  await ev.turns(2);
  assert.deepEqual(ev.gates.at(-1)!.action, 'ask');
  assert.ok(existsSync(join(launch.cwd, 'pushed.txt')), 'the approved command ran');
});
