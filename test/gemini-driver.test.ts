/**
 * Drives the REAL Gemini CLI (pinned @google/gemini-cli 0.61.0) through src/daemon/agents/gemini.ts, offline,
 * against test/support/scripted-gemini.ts. The driver is used directly, with a fake DriverEvents that records
 * every call. As root, gemini runs as nobody: a `gemini` wrapper first on the launch PATH chowns
 * $GEMINI_CLI_HOME and execs `setpriv`.
 *
 * Observed with 0.61.0 (asserted below):
 *  - `gemini -p '' -o stream-json --yolo --skip-trust -m <model> [-r <uuid>]`, prompt on stdin; a resumed run
 *    prints `init` with the SAME session id and sends the earlier COMPLETED turns as history (an interrupted or
 *    failed turn is left out of it).
 *  - With -m there is no router call: only POST /v1beta/models/<model>:streamGenerateContent?alt=sse, key in
 *    `x-goog-api-key`. Assistant text comes as `message` events with `delta: true`, one per SSE chunk.
 *  - SIGINT ends gemini (exit 0, no `result`) within ~0.5 s but leaves the running shell command (its own
 *    process group) alive: the driver kills it.
 *  - An HTTP 400 from the model gives an `error`/`result` with "[API Error: …]" and a non-zero exit.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pinnedCli } from './support/pinned-cli.js';
import { GATE_PROBES, NOBODY, Recorder, asNobody, assertGated, tempRoot } from './support/driver-harness.js';
import type { AgentDriver, AgentLaunch } from '../src/daemon/agents/driver.js';
import { geminiAgent } from '../src/daemon/agents/gemini.js';
import { NO_TURN_TEXT, ScriptedGemini } from './support/scripted-gemini.js';

const VERSION = '0.61.0';
const TIMEOUT = 180_000;
const API_KEY = 'gm-scripted-secret-123';
let geminiBin = process.env.CLAUDE_VM_TEST_GEMINI_BIN ?? '';

before(() => {
  if (geminiBin) return;
  geminiBin = pinnedCli('@google/gemini-cli', VERSION, 'gemini');
});




/** A project dir, a state dir and a HOME (owned by nobody when dropping root), and the launch for them. */
function setup(server: ScriptedGemini, model: string | null, sessionId: string | null = null): AgentLaunch {
  const root = tempRoot('cvm-gemini-');
  const dirs = ['project', 'state', 'home', 'bin'].map((d) => join(root, d));
  dirs.forEach((d) => mkdirSync(d));
  if (asNobody) for (const d of [root, ...dirs.slice(0, 3)]) chownSync(d, 65534, 65534);
  const [cwd, stateDir, home, bin] = dirs as [string, string, string, string];
  // The driver (root here, the same user as gemini in a workspace) writes its settings.json: hand it over.
  const exec = asNobody ? `chown -R 65534:65534 "$GEMINI_CLI_HOME" && exec setpriv ${NOBODY.join(' ')} ${geminiBin}` : `exec ${geminiBin}`;
  writeFileSync(join(bin, 'gemini'), `#!/bin/sh\n${exec} "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: home, GOOGLE_GEMINI_BASE_URL: server.url, GEMINI_API_KEY: API_KEY };
  return { cwd, env, model, sessionId, stateDir };
}

/** The texts of one role's messages in a request's history (the first user message is gemini's own context). */
const texts = (body: any, role: 'user' | 'model'): string[] =>
  body.contents.filter((c: any) => c.role === role).flatMap((c: any) => c.parts.filter((p: any) => typeof p.text === 'string').map((p: any) => p.text));

test('scripted gemini server: SSE chunks with text and function calls, errors, empty queue', async () => {
  const server = await ScriptedGemini.start();
  try {
    server.enqueue({ text: 'hello', tools: [{ name: 'run_shell_command', args: { command: 'true' } }] }, { error: { status: 400, message: 'nope' } });
    const post = () => fetch(`${server.url}/v1beta/models/m-1:streamGenerateContent?alt=sse`, { method: 'POST', body: JSON.stringify({ contents: [] }) });
    const chunks = async (res: Response) => {
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      return (await res.text()).trim().split('\n\n').map((c) => JSON.parse(c.slice('data: '.length)));
    };
    const first = await chunks(await post());
    const parts = first.flatMap((c) => c.candidates[0].content.parts);
    assert.equal(parts.filter((p) => p.text).map((p) => p.text).join(''), 'hello');
    assert.deepEqual(parts.filter((p) => p.functionCall).map((p) => p.functionCall), [{ name: 'run_shell_command', args: { command: 'true' } }]);
    assert.equal(first.at(-1).candidates[0].finishReason, 'STOP');
    assert.ok(first.at(-1).usageMetadata.candidatesTokenCount > 0);
    const failed = await post();
    assert.equal(failed.status, 400);
    assert.equal((await failed.json()).error.message, 'nope');
    assert.equal((await chunks(await post())).map((c) => c.candidates[0].content.parts[0].text).join(''), NO_TURN_TEXT);
    assert.deepEqual(server.requests.map((r) => r.model), ['m-1', 'm-1', 'm-1']);
    assert.equal((await fetch(`${server.url}/v1beta/models/m-1:generateContent`, { method: 'POST' })).status, 404);
    assert.deepEqual(server.probes, [{ method: 'POST', path: '/v1beta/models/m-1:generateContent' }]);
  } finally {
    await server.close();
  }
});

test('real gemini: a shell command, a resumed second turn, an interrupt, then the session goes on', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedGemini.start();
  t.after(() => server.close());
  const launch = setup(server, null); // no model: the driver picks gemini-2.5-flash, so no router call
  const ev = new Recorder();
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const driver = geminiAgent.create(launch, ev);
  drivers.push(driver);

  // Turn 1: the model runs a shell command that writes a file, then answers.
  server.enqueue({ text: 'Writing it.', tools: [{ name: 'run_shell_command', args: { command: 'echo hello > made.txt' } }] }, { text: 'All done.' });
  driver.send('please make the file');
  await ev.turns(1);
  const made = join(launch.cwd, 'made.txt');
  assert.equal(readFileSync(made, 'utf8'), 'hello\n');
  if (asNobody) assert.equal(statSync(made).uid, 65534, 'gemini ran as nobody');

  assert.equal(ev.sessions.length, 1);
  const sessionId = ev.sessions[0]!;
  assert.match(sessionId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(ev.events().map((e) => e.type), [
    'agent.started', 'session.started', 'assistant.text', 'tool.called', 'tool.result', 'assistant.text', 'turn.completed',
  ]);
  assert.equal(ev.events('agent.started')[0]!.data.resumed, false);
  assert.deepEqual(ev.events('session.started')[0]!.data, { sessionId, model: 'gemini-2.5-flash' });
  const [called] = ev.events('tool.called');
  const [result] = ev.events('tool.result');
  assert.equal(called!.data.name, 'run_shell_command');
  assert.equal(called!.data.input.command, 'echo hello > made.txt');
  assert.deepEqual(result!.data, { toolUseId: called!.data.toolUseId, output: '', isError: false });
  // The deltas ("Writi" + "ng it.") are coalesced: one event per message.
  assert.deepEqual(ev.events('assistant.text').map((e) => e.data.text), ['Writing it.', 'All done.']);
  const completed = ev.events('turn.completed')[0]!.data;
  assert.deepEqual([completed.result, completed.isError, completed.costUsd], ['All done.', false, null]);
  assert.ok(completed.inputTokens > 0 && completed.outputTokens > 0 && completed.durationMs! >= 0, JSON.stringify(completed));
  assert.deepEqual(ev.calls.slice(-2), [{ kind: 'exited', code: 0, signal: null }, { kind: 'turnEnded' }]);

  // What gemini sent: our key, the default model, the command's output back as a functionResponse.
  assert.equal(server.requests.length, 2);
  assert.equal(server.requests[0]!.headers['x-goog-api-key'], API_KEY);
  assert.deepEqual(server.requests.map((r) => r.model), ['gemini-2.5-flash', 'gemini-2.5-flash']);
  assert.ok(server.requests[1]!.body.contents.some((c: any) => c.parts.some((p: any) => p.functionResponse?.name === 'run_shell_command')));
  assert.deepEqual(server.probes, [], 'no router call, nothing else');
  const settings = readFileSync(join(launch.stateDir, 'gemini-home', '.gemini', 'settings.json'), 'utf8');
  assert.equal(JSON.parse(settings).security.auth.selectedType, 'gemini-api-key');
  assert.ok(!settings.includes(API_KEY), 'the key stays in the env');

  // Turn 2, same driver: `-r <session id>` carries the history; same session, so no new session event.
  server.enqueue({ text: 'second answer' });
  driver.send('-a second question, starting with a dash');
  await ev.turns(2);
  assert.deepEqual(ev.sessions, [sessionId]);
  assert.equal(ev.events('agent.started')[1]!.data.resumed, true);
  const body2 = server.requests[2]!.body;
  assert.deepEqual(texts(body2, 'user').slice(-2), ['please make the file', '-a second question, starting with a dash']);
  assert.deepEqual(texts(body2, 'model'), ['Writing it.', 'All done.']);
  assert.equal(ev.events('turn.completed')[1]!.data.result, 'second answer');

  // Turn 3 in a NEW driver resumed from the session id (as the conversation does after each exit): interrupt
  // it while a long command runs.
  const ev3 = new Recorder();
  const driver3 = geminiAgent.create({ ...launch, sessionId }, ev3);
  drivers.push(driver3);
  const long = `sleep 30.${process.pid}`; // unique, so pgrep below cannot see another run's command
  server.enqueue({ tools: [{ name: 'run_shell_command', args: { command: long } }] });
  driver3.send('run something long');
  await ev3.until('the long command to start', () => ev3.events('tool.called').length > 0 && spawnSync('pgrep', ['-f', long]).status === 0);
  await driver3.interrupt();
  assert.deepEqual(ev3.events('turn.interrupted').map((e) => e.data), [{ reason: 'interrupted by the user' }]);
  assert.equal(ev3.events('turn.completed').length, 0);
  assert.equal(ev3.events('error').length, 0, 'an interrupt is not an error');
  assert.equal(ev3.count('turnEnded'), 1);
  assert.equal(ev3.count('exited'), 1);
  assert.equal(ev3.sessions.length, 0, 'resumed, not a new session');
  // The command is stopped too (its process group was signalled; it may take a moment to be gone).
  await ev3.until('the long command to be stopped too', () => spawnSync('pgrep', ['-f', long]).status !== 0);
  await driver3.interrupt(); // nothing running: a no-op

  // The session survives the interrupt (gemini leaves the interrupted turn out of the history).
  server.enqueue({ text: 'still here' });
  driver3.send('are you there?');
  await ev3.turns(2);
  assert.equal(ev3.events('turn.completed')[0]!.data.result, 'still here');
  assert.deepEqual(ev3.sessions, []);
  const last = server.requests.at(-1)!.body;
  assert.deepEqual(texts(last, 'user').slice(-1), ['are you there?']);
  assert.ok(texts(last, 'user').includes('please make the file') && texts(last, 'model').includes('second answer'), JSON.stringify(last.contents));

  const all = JSON.stringify([ev.calls, ev3.calls]);
  assert.ok(!all.includes(API_KEY) && !all.includes(server.url), 'no env value in any event');
});

test('real gemini: a model error ends the turn with one error; an unknown session id is reported', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedGemini.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const ev = new Recorder();
  const driver = geminiAgent.create(launch, ev);
  t.after(() => driver.stop());

  server.enqueue({ error: { status: 400, message: 'scripted failure' } });
  driver.send('hello?');
  await ev.turns(1);
  assert.deepEqual(ev.events().map((e) => e.type), ['agent.started', 'session.started', 'error']);
  assert.match(ev.events('error')[0]!.data.message, /scripted failure/);
  assert.equal(server.requests[0]!.model, 'scripted-model');
  const exited = ev.calls.at(-2) as { kind: string; code: number | null };
  assert.equal(exited.kind, 'exited');
  assert.notEqual(exited.code, 0);

  const ev2 = new Recorder();
  const driver2 = geminiAgent.create({ ...launch, sessionId: '00000000-0000-4000-8000-000000000000' }, ev2);
  t.after(() => driver2.stop());
  driver2.send('resume a ghost');
  await ev2.turns(1);
  assert.deepEqual(ev2.events().map((e) => e.type), ['agent.started', 'error'], JSON.stringify(ev2.calls));
  assert.match(ev2.events('error')[0]!.data.message, /the next message starts a new session/);
  server.enqueue({ text: 'fresh' });
  driver2.send('again');
  await ev2.turns(2);
  assert.equal(ev2.sessions.length, 1, 'a new session');
  assert.equal(ev2.events('turn.completed')[0]!.data.result, 'fresh');
});

test('real gemini: every shell command meets the approval gate (a BeforeTool hook); a refusal stops it and the model is told why', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedGemini.start();
  t.after(() => server.close());
  const launch = setup(server, null);
  const ev = new Recorder();
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const shell = (command: string) => ({ tools: [{ name: 'run_shell_command', args: { command } }] });
  // The functionResponse parts gemini sent back, in order.
  const responses = () => server.requests.flatMap((r) => r.body.contents.flatMap((c: any) => c.parts.filter((p: any) => p.functionResponse)))
    .map((p: any) => JSON.stringify(p.functionResponse.response));

  // A force push asks the user, who says no: nothing of the line runs, and the model reads the refusal.
  server.enqueue(shell(GATE_PROBES.push), shell(GATE_PROBES.sudo), shell(GATE_PROBES.echo), { text: 'ok' });
  const driver = geminiAgent.create(launch, ev);
  drivers.push(driver);
  driver.send('push it');
  await ev.turns(1);
  assertGated(ev, launch.cwd, [...new Set(responses())]);
  // The user sees each refusal as a failed call, with the reason.
  assert.deepEqual(ev.events('tool.result').map((e) => [e.data.output.replace(/ \(.*/, ''), e.data.isError]), [
    ['Tool execution blocked: The user did not approve this command', true],
    ["Tool execution blocked: Blocked by the workspace's rules: privilege escalation is not allowed in a workspace.", true],
    ['fine', false],
  ]);

  // The same line, approved this time, runs (a new process: headless gemini runs one turn).
  ev.userDecision = 'allow';
  server.enqueue(shell(GATE_PROBES.push), { text: 'pushed' });
  const driver2 = geminiAgent.create({ ...launch, sessionId: ev.sessions[0]! }, ev);
  drivers.push(driver2);
  driver2.send('push it, I approve');
  await ev.turns(2);
  assert.equal(ev.gates.at(-1)!.action, 'ask');
  assert.ok(existsSync(join(launch.cwd, 'pushed.txt')), 'the approved command ran');
});
