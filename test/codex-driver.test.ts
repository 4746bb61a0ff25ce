/**
 * Drives the REAL Codex CLI (pinned 0.169.0) through src/daemon/agents/codex.ts, offline, against
 * test/support/scripted-openai.ts. The driver is used directly, with a fake DriverEvents that records every call.
 *
 * As root, codex runs as nobody: a `codex` wrapper first on the launch PATH chowns $CODEX_HOME and execs
 * `setpriv` (in a workspace the daemon and the agent are the same non-root user, so the driver drops nothing).
 *
 * Observed with 0.169.0 (asserted below):
 *  - `codex exec --json … -` / `codex exec --json … resume <thread_id> -` (global flags before `resume`, prompt
 *    on stdin). A resumed run prints `thread.started` with the SAME id and sends the whole history.
 *  - With a custom model_provider codex makes no WebSocket attempt and no /models call: only POST /v1/responses.
 *  - A model without built-in metadata (any custom name) adds an `error` item "Model metadata for … not found"
 *    on every run, and gets only function tools (exec_command {cmd}, …); `gpt-5.5` also gets the freeform
 *    `apply_patch` custom tool, reported as a `file_change` item.
 *  - SIGINT ends a running command and the process (exit 1) within ~100 ms; the thread stays resumable, and the
 *    next turn's history has a `<turn_aborted>` user message before the new one.
 *  - A non-retryable response.failed gives `error` + `turn.failed` (exit 1); an unknown resume id exits 1 with
 *    "no rollout found for thread id …" on stderr and no JSONL at all.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pinnedCli } from './support/pinned-cli.js';
import { GATE_PROBES, NOBODY, Recorder, asNobody, assertGated, tempRoot } from './support/driver-harness.js';
import type { AgentDriver, AgentLaunch } from '../src/daemon/agents/driver.js';
import { codexAgent } from '../src/daemon/agents/codex.js';
import { NO_TURN_TEXT, ScriptedOpenAI } from './support/scripted-openai.js';

const VERSION = '0.169.0';
const TIMEOUT = 120_000;
const API_KEY = 'sk-scripted-secret-123';
let codexBin = process.env.CLAUDE_VM_TEST_CODEX_BIN ?? '';

before(() => {
  if (codexBin) return;
  codexBin = pinnedCli('@openai/codex', VERSION, 'codex');
});




/** A project dir, a state dir and a HOME (owned by nobody when dropping root), and the launch for them. */
function setup(server: ScriptedOpenAI, model: string | null, sessionId: string | null = null): AgentLaunch {
  const root = tempRoot('cvm-codex-');
  const dirs = ['project', 'state', 'home', 'bin'].map((d) => join(root, d));
  dirs.forEach((d) => mkdirSync(d));
  if (asNobody) for (const d of [root, ...dirs.slice(0, 3)]) chownSync(d, 65534, 65534);
  const [cwd, stateDir, home, bin] = dirs as [string, string, string, string];
  // The driver (root here, the same user as codex in a workspace) writes $CODEX_HOME/config.toml: hand it over.
  const exec = asNobody ? `chown -R 65534:65534 "$CODEX_HOME" && exec setpriv ${NOBODY.join(' ')} ${codexBin}` : `exec ${codexBin}`;
  writeFileSync(join(bin, 'codex'), `#!/bin/sh\n${exec} "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: home, OPENAI_BASE_URL: `${server.url}/v1`, OPENAI_API_KEY: API_KEY };
  return { cwd, env, model, sessionId, stateDir };
}

const userTexts = (body: any): string[] =>
  body.input.filter((i: any) => i.type === 'message' && i.role === 'user').flatMap((i: any) => i.content.map((c: any) => c.text));
const assistantTexts = (body: any): string[] =>
  body.input.filter((i: any) => i.type === 'message' && i.role === 'assistant').flatMap((i: any) => i.content.map((c: any) => c.text));

test('scripted server: SSE stream, function and custom tool calls, failure, empty queue, 426 for WebSocket', async () => {
  const server = await ScriptedOpenAI.start();
  try {
    server.enqueue({ text: 'hi', tools: [{ name: 'exec_command', arguments: { cmd: 'true' }, callId: 'c1' }, { name: 'apply_patch', input: 'P' }] });
    server.enqueue({ error: { code: 'invalid_prompt', message: 'nope' } });
    const stream = async () => {
      const res = await fetch(`${server.url}/v1/responses`, { method: 'POST', body: JSON.stringify({ model: 'm', stream: true, input: [] }) });
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      return (await res.text()).trim().split('\n\n').map((chunk) => {
        const [ev, data] = chunk.split('\n');
        const parsed = JSON.parse(data!.slice('data: '.length));
        assert.equal(ev, `event: ${parsed.type}`);
        return parsed;
      });
    };
    const first = await stream();
    const done = first.filter((e) => e.type === 'response.output_item.done').map((e) => e.item);
    assert.deepEqual(done.map((i) => i.type), ['message', 'function_call', 'custom_tool_call']);
    assert.deepEqual([done[1].call_id, done[1].arguments, done[2].input], ['c1', '{"cmd":"true"}', 'P']);
    assert.equal(first.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'hi');
    assert.equal(first.at(-1).type, 'response.completed');
    assert.ok(first.at(-1).response.usage.output_tokens > 0);
    assert.deepEqual((await stream()).at(-1).response.error, { code: 'invalid_prompt', message: 'nope' });
    assert.equal((await stream()).at(-1).response.output[0].content[0].text, NO_TURN_TEXT);
    assert.equal(server.requests.length, 3);

    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/v1/responses`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 426);
    assert.equal((await fetch(`${server.url}/v1/responses`)).status, 426);
    assert.deepEqual(server.probes.map((p) => p.method), ['GET (upgrade)', 'GET']);
  } finally {
    await server.close();
  }
});

test('real codex: a shell command, a resumed second turn, an interrupt, then the thread goes on', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedOpenAI.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const ev = new Recorder();
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const driver = codexAgent.create(launch, ev);
  drivers.push(driver);

  // Turn 1: the model runs a shell command that writes a file, then answers.
  server.enqueue({ text: 'Writing it.', tools: [{ name: 'exec_command', arguments: { cmd: 'echo hello > made.txt' }, callId: 'call_w' }] }, { text: 'done' });
  driver.send('please make the file');
  await ev.turns(1);
  const made = join(launch.cwd, 'made.txt');
  assert.equal(readFileSync(made, 'utf8'), 'hello\n');
  if (asNobody) assert.equal(statSync(made).uid, 65534, 'codex ran as nobody');

  assert.equal(ev.sessions.length, 1);
  const threadId = ev.sessions[0]!;
  assert.match(threadId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(ev.events().map((e) => e.type), [
    'agent.started', 'session.started', 'assistant.text', 'tool.called', 'tool.result', 'assistant.text', 'turn.completed',
  ]); // in particular no `error` for the "Model metadata … not found" item
  assert.equal(ev.events('agent.started')[0]!.data.resumed, false);
  assert.deepEqual(ev.events('session.started')[0]!.data, { sessionId: threadId, model: 'scripted-model' });
  const [called] = ev.events('tool.called');
  const [result] = ev.events('tool.result');
  assert.equal(called!.data.name, 'shell');
  assert.match(called!.data.input.command, /echo hello > made\.txt/);
  assert.deepEqual(result!.data, { toolUseId: called!.data.toolUseId, output: '', isError: false });
  assert.deepEqual(ev.events('assistant.text').map((e) => e.data.text), ['Writing it.', 'done']);
  const completed = ev.events('turn.completed')[0]!.data;
  assert.deepEqual([completed.result, completed.isError, completed.costUsd], ['done', false, null]);
  assert.ok(completed.inputTokens > 0 && completed.outputTokens > 0 && completed.durationMs! >= 0, JSON.stringify(completed));
  // The exit is reported before the turn's end (the conversation drops an exited driver, then sends the next message).
  assert.deepEqual(ev.calls.slice(-2).map((c) => c.kind), ['exited', 'turnEnded']);
  assert.deepEqual(ev.calls.at(-2), { kind: 'exited', code: 0, signal: null });

  // What codex sent: our key, our model, the command's output back under the scripted call id.
  assert.equal(server.requests.length, 2);
  assert.equal(server.requests[0]!.headers.authorization, `Bearer ${API_KEY}`);
  assert.equal(server.requests[0]!.body.model, 'scripted-model');
  assert.ok(server.requests[0]!.body.tools.some((x: any) => x.name === 'exec_command'));
  assert.ok(server.requests[1]!.body.input.some((i: any) => i.type === 'function_call_output' && i.call_id === 'call_w'));
  assert.deepEqual(server.probes, [], 'no WebSocket attempt, no /models');
  const config = readFileSync(join(launch.stateDir, 'codex-home', 'config.toml'), 'utf8');
  assert.match(config, /model_provider = "claudevm"/);
  assert.ok(!config.includes(API_KEY), 'the key stays in the env');

  // Turn 2, same driver: `resume <thread_id>` carries the history; the thread is the same, so no new session.
  server.enqueue({ text: 'second answer' });
  driver.send('-a second question, starting with a dash');
  await ev.turns(2);
  assert.deepEqual(ev.sessions, [threadId]);
  assert.equal(ev.events('agent.started')[1]!.data.resumed, true);
  const body2 = server.requests[2]!.body;
  assert.deepEqual(userTexts(body2).slice(-2), ['please make the file', '-a second question, starting with a dash']);
  assert.deepEqual(assistantTexts(body2), ['Writing it.', 'done']);
  assert.equal(ev.events('turn.completed')[1]!.data.result, 'second answer');

  // Turn 3 in a NEW driver resumed from the session id (as the conversation does after each exit): interrupt
  // it while a long command runs.
  const ev3 = new Recorder();
  const driver3 = codexAgent.create({ ...launch, sessionId: threadId }, ev3);
  drivers.push(driver3);
  const long = `sleep 30.${process.pid}`; // unique, so pgrep below cannot see another run's command
  server.enqueue({ tools: [{ name: 'exec_command', arguments: { cmd: long } }] });
  driver3.send('run something long');
  await ev3.until('the long command to start', () => ev3.events('tool.called').length > 0);
  await driver3.interrupt();
  assert.deepEqual(ev3.events('turn.interrupted').map((e) => e.data), [{ reason: 'interrupted by the user' }]);
  assert.equal(ev3.events('turn.completed').length, 0);
  assert.equal(ev3.count('turnEnded'), 1);
  assert.equal(ev3.count('exited'), 1);
  assert.equal(ev3.sessions.length, 0, 'resumed, not a new thread');
  // The command is stopped too (its process group was signalled; it may take a moment to be gone).
  await ev3.until('the long command to be stopped too', () => spawnSync('pgrep', ['-f', long]).status !== 0);
  await driver3.interrupt(); // nothing running: a no-op

  // The thread survives the interrupt.
  server.enqueue({ text: 'still here' });
  driver3.send('are you there?');
  await ev3.turns(2);
  assert.equal(ev3.events('turn.completed')[0]!.data.result, 'still here');
  // codex records the interrupt in the thread as a user message before the next one.
  const [asked, aborted, again] = userTexts(server.requests.at(-1)!.body).slice(-3);
  assert.deepEqual([asked, again], ['run something long', 'are you there?']);
  assert.match(aborted!, /^<turn_aborted>\nThe user interrupted the previous turn on purpose/);

  const all = JSON.stringify([ev.calls, ev3.calls]);
  assert.ok(!all.includes(API_KEY) && !all.includes(launch.env.OPENAI_BASE_URL!), 'no env value in any event');
});

test('real codex with gpt-5.5: apply_patch is reported as an `edit` tool call', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedOpenAI.start();
  t.after(() => server.close());
  const launch = setup(server, 'gpt-5.5');
  const ev = new Recorder();
  const driver = codexAgent.create(launch, ev);
  t.after(() => driver.stop());
  const patch = '*** Begin Patch\n*** Add File: patched.txt\n+patched\n*** End Patch\n';
  server.enqueue({ tools: [{ name: 'apply_patch', input: patch }] }, { tools: [{ name: 'exec_command', arguments: { cmd: 'echo oops; exit 3' } }] }, { text: 'ok' });
  driver.send('patch it');
  await ev.turns(1);
  assert.equal(readFileSync(join(launch.cwd, 'patched.txt'), 'utf8'), 'patched\n');
  const calls = ev.events('tool.called').map((e) => e.data);
  const results = ev.events('tool.result').map((e) => e.data);
  assert.deepEqual(calls[0], { toolUseId: calls[0].toolUseId, name: 'edit', input: { changes: [{ path: join(launch.cwd, 'patched.txt'), kind: 'add' }] } });
  assert.deepEqual(results[0], { toolUseId: calls[0].toolUseId, output: `add ${join(launch.cwd, 'patched.txt')}`, isError: false });
  assert.deepEqual([calls[1].name, results[1].output, results[1].isError], ['shell', 'oops\n', true]);
  assert.equal(ev.events('turn.completed')[0]!.data.result, 'ok');
  assert.equal(ev.events('error').length, 0);
});

test('real codex: a failed turn and an unknown session end the turn with one error', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedOpenAI.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model', '00000000-0000-4000-8000-000000000000');
  const ev = new Recorder();
  const driver = codexAgent.create(launch, ev);
  t.after(() => driver.stop());

  // The id is unknown: no JSONL, exit 1; the driver says so and starts a new thread with the next message.
  driver.send('hello?');
  await ev.turns(1);
  assert.deepEqual(ev.events().map((e) => e.type), ['agent.started', 'error']);
  assert.match(ev.events('error')[0]!.data.message, /exited \(code 1\).*no rollout found.*the next message starts a new session/);
  assert.equal(server.requests.length, 0);

  server.enqueue({ error: { code: 'invalid_prompt', message: 'scripted failure' } });
  driver.send('again');
  await ev.turns(2);
  assert.equal(ev.sessions.length, 1, 'a new thread');
  const turn2 = ev.events().slice(2);
  assert.deepEqual(turn2.map((e) => e.type), ['agent.started', 'session.started', 'error']);
  assert.equal(turn2[2]!.data.message, 'scripted failure'); // `error` and `turn.failed` carried it: reported once
  assert.deepEqual(ev.calls.at(-2), { kind: 'exited', code: 1, signal: null });
});

test('a codex that ignores SIGINT is killed after 3 s, with the commands it started', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedOpenAI.start();
  t.after(() => server.close());
  const launch = setup(server, null);
  // A stand-in that starts a thread, ignores SIGINT and has a child of its own (like a running command).
  const marker = `sleep 40.${process.pid}`;
  const fake = `#!/bin/sh\ntrap '' INT\necho '{"type":"thread.started","thread_id":"t-fake"}'\n${marker} &\nwait\n`;
  writeFileSync(join(launch.env.PATH!.split(':')[0]!, 'codex'), fake, { mode: 0o755 });
  const ev = new Recorder();
  const driver = codexAgent.create(launch, ev);
  driver.send('hang');
  await ev.until('the fake thread', () => ev.sessions.length === 1);
  await driver.interrupt();
  assert.deepEqual(ev.events('turn.interrupted').map((e) => e.data.reason), ['interrupted by the user']);
  assert.deepEqual(ev.calls.slice(-2), [{ kind: 'exited', code: null, signal: 'SIGKILL' }, { kind: 'turnEnded' }]);
  assert.notEqual(spawnSync('pgrep', ['-f', marker]).status, 0, 'its child was killed too');
  assert.ok(!ev.calls.some((c) => c.kind === 'emit' && c.type === 'error'), 'an interrupt is not an error');
});

test('real codex: every shell command meets the approval gate (a PreToolUse hook); a refusal stops it and the model is told why', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedOpenAI.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const ev = new Recorder();
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const shell = (callId: string, cmd: string) => ({ tools: [{ name: 'exec_command', arguments: { cmd }, callId }] });
  const toolOutput = (callId: string) => server.requests.flatMap((r) => r.body.input).find((i: any) => i.type === 'function_call_output' && i.call_id === callId);

  // A force push asks the user, who says no: nothing of the line runs, and the model reads the refusal.
  server.enqueue(shell('call_push', GATE_PROBES.push), shell('call_sudo', GATE_PROBES.sudo), shell('call_echo', GATE_PROBES.echo), { text: 'ok' });
  const driver = codexAgent.create(launch, ev);
  drivers.push(driver);
  driver.send('push it');
  await ev.turns(1);
  assertGated(ev, launch.cwd, ['call_push', 'call_sudo', 'call_echo'].map((id) => JSON.stringify(toolOutput(id))));
  // codex reports no item for a refused command: the driver shows the refusal as a failed shell call.
  assert.deepEqual(ev.events('tool.result').map((e) => [e.data.output.replace(/ \(.*/, ''), e.data.isError]), [
    ['The user did not approve this command', true],
    ["Blocked by the workspace's rules: privilege escalation is not allowed in a workspace.", true],
    ['fine\n', false],
  ]);
  assert.deepEqual(ev.events('tool.called')[1]!.data.input, { command: 'sudo true' });
  assert.deepEqual(ev.events('error'), [], 'no warning about our own hook');

  // The same line, approved this time, runs (a new process: codex exec runs one turn).
  ev.userDecision = 'allow';
  server.enqueue(shell('call_push2', GATE_PROBES.push), { text: 'pushed' });
  const driver2 = codexAgent.create({ ...launch, sessionId: ev.sessions[0]! }, ev);
  drivers.push(driver2);
  driver2.send('push it, I approve');
  await ev.turns(2);
  assert.equal(ev.gates.at(-1)!.action, 'ask');
  assert.ok(existsSync(join(launch.cwd, 'pushed.txt')), 'the approved command ran');
});
