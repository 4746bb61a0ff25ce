/**
 * Drives the REAL opencode CLI (opencode-ai, pinned 1.18.33) through src/daemon/agents/opencode.ts, offline, against
 * test/support/scripted-chat-completions.ts. The driver is used directly, with a fake DriverEvents that records
 * every call.
 *
 * As root, opencode runs as nobody: an `opencode` wrapper first on the launch PATH chowns the driver's private
 * config dir and execs `setpriv` (in a workspace the daemon and the agent are the same non-root user).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pinnedCli } from './support/pinned-cli.js';
import { GATE_PROBES, NOBODY, Recorder, asNobody, assertGated, tempRoot } from './support/driver-harness.js';
import type { AgentDriver, AgentLaunch } from '../src/daemon/agents/driver.js';
import { opencodeAgent } from '../src/daemon/agents/opencode.js';
import { ScriptedChatCompletions } from './support/scripted-chat-completions.js';

const VERSION = '1.18.33';
const TIMEOUT = 240_000;
const API_KEY = 'sk-scripted-secret-789';
let opencodeBin = process.env.CLAUDE_VM_TEST_OPENCODE_BIN ?? '';

before(() => {
  if (opencodeBin) return;
  opencodeBin = pinnedCli('opencode-ai', VERSION, 'opencode');
});




/** A project dir, a state dir and a HOME (owned by nobody when dropping root), and the launch for them. */
function setup(server: ScriptedChatCompletions, model: string | null): AgentLaunch {
  const root = tempRoot('cvm-opencode-');
  const dirs = ['project', 'state', 'home', 'bin'].map((d) => join(root, d));
  dirs.forEach((d) => mkdirSync(d));
  if (asNobody) for (const d of [root, ...dirs.slice(0, 3)]) chownSync(d, 65534, 65534);
  const [cwd, stateDir, home, bin] = dirs as [string, string, string, string];
  const exec = asNobody ? `chown -R 65534:65534 "$(dirname "$OPENCODE_CONFIG")" && exec setpriv ${NOBODY.join(' ')} ${opencodeBin}` : `exec ${opencodeBin}`;
  writeFileSync(join(bin, 'opencode'), `#!/bin/sh\n${exec} "$@"\n`, { mode: 0o755 });
  // XDG_CONFIG_HOME/XDG_DATA_HOME follow HOME; unset any the test runner has, so nothing outside root is used.
  const env = {
    PATH: `${bin}:${process.env.PATH}`, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CACHE_HOME: join(home, '.cache'), XDG_STATE_HOME: join(home, '.local/state'),
    OPENCODE_BASE_URL: `${server.url}/v1`, OPENAI_API_KEY: API_KEY,
  };
  return { cwd, env, model, sessionId: null, stateDir };
}

/** The conversation's text messages in a chat request (user/assistant). */
const said = (body: any, role: string): string[] =>
  body.messages.filter((m: any) => m.role === role).flatMap((m: any) =>
    (typeof m.content === 'string' ? [m.content] : (m.content ?? []).map((c: any) => c.text ?? '')).filter((t: string) => t));

test('real opencode: a bash command, a second turn continuing the session, an interrupt, then the session goes on', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedChatCompletions.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const newDriver = (sessionId: string | null, ev: Recorder) => {
    const d = opencodeAgent.create({ ...launch, sessionId }, ev);
    drivers.push(d);
    return d;
  };

  // Turn 1: the model runs bash writing a file, then answers. No title request: the first request is the turn's.
  const ev = new Recorder();
  const driver = newDriver(null, ev);
  server.enqueue({ text: 'Writing it.', tools: [{ name: 'bash', arguments: { command: 'echo hello > made.txt', description: 'Write made.txt' }, id: 'call_w' }] }, { text: 'done' });
  driver.send('please make the file');
  await ev.turns(1);
  const made = join(launch.cwd, 'made.txt');
  assert.equal(readFileSync(made, 'utf8'), 'hello\n');
  if (asNobody) assert.equal(statSync(made).uid, 65534, 'opencode ran as nobody');

  assert.equal(ev.sessions.length, 1);
  const sessionId = ev.sessions[0]!;
  assert.match(sessionId, /^ses_[A-Za-z0-9]+$/);
  assert.deepEqual(ev.events().map((e) => e.type), [
    'agent.started', 'session.started', 'assistant.text', 'tool.called', 'tool.result', 'assistant.text', 'turn.completed',
  ]);
  assert.equal(ev.events('agent.started')[0]!.data.resumed, false);
  assert.deepEqual(ev.events('session.started')[0]!.data, { sessionId, model: 'scripted-model' });
  assert.deepEqual(ev.events('tool.called')[0]!.data, { toolUseId: 'call_w', name: 'bash', input: { command: 'echo hello > made.txt', description: 'Write made.txt' } });
  assert.deepEqual(ev.events('tool.result')[0]!.data, { toolUseId: 'call_w', output: '(no output)', isError: false });
  assert.deepEqual(ev.events('assistant.text').map((e) => e.data.text), ['Writing it.', 'done']);
  const completed = ev.events('turn.completed')[0]!.data;
  assert.deepEqual([completed.result, completed.isError, completed.costUsd], ['done', false, 0]);
  assert.ok(completed.inputTokens > 0 && completed.outputTokens > 0 && completed.durationMs! >= 0, JSON.stringify(completed));
  // One process per turn: it exited, and exited() comes before turnEnded().
  assert.deepEqual(ev.calls.slice(-2), [{ kind: 'exited', code: 0, signal: null }, { kind: 'turnEnded' }]);

  // What opencode sent: exactly the two steps of the turn (no title generation), our key, our model, the tool output.
  assert.equal(server.requests.length, 2, 'no extra title request');
  assert.equal(server.requests[0]!.headers.authorization, `Bearer ${API_KEY}`);
  assert.equal(server.requests[0]!.body.model, 'scripted-model');
  assert.ok(server.requests[0]!.body.tools.some((x: any) => x.function?.name === 'bash'));
  assert.deepEqual(said(server.requests[0]!.body, 'user'), ['please make the file']);
  assert.ok(server.requests[1]!.body.messages.some((m: any) => m.role === 'tool' && m.tool_call_id === 'call_w'));
  const config = readFileSync(join(launch.stateDir, 'opencode', 'opencode.json'), 'utf8');
  assert.ok(!config.includes(API_KEY) && !config.includes(server.url), 'the key and URL stay in the env');

  // Turn 2: a new process continuing the session (as the conversation does: a fresh driver after the exit).
  const ev2 = new Recorder();
  const driver2 = newDriver(sessionId, ev2);
  server.enqueue({ text: 'second answer' });
  driver2.send('-a second question, starting with a dash');
  await ev2.turns(1);
  assert.equal(ev2.events('agent.started')[0]!.data.resumed, true);
  assert.equal(ev2.sessions.length, 0, 'continued, not a new session');
  assert.deepEqual(ev2.events().map((e) => e.type), ['agent.started', 'assistant.text', 'turn.completed']);
  assert.equal(ev2.events('turn.completed')[0]!.data.result, 'second answer');
  assert.equal(server.requests.length, 3);
  const body2 = server.requests[2]!.body;
  assert.deepEqual(said(body2, 'user'), ['please make the file', '-a second question, starting with a dash']);
  assert.deepEqual(said(body2, 'assistant'), ['Writing it.', 'done']);

  // Turn 3: interrupt while a long bash command runs (opencode runs it in its own session: it must go too).
  const ev3 = new Recorder();
  const driver3 = newDriver(sessionId, ev3);
  const long = `sleep 30.${process.pid}`; // unique, so pgrep below cannot see another run's command
  server.enqueue({ tools: [{ name: 'bash', arguments: { command: `echo started && ${long} && echo end > end.txt`, description: 'Long' } }] });
  driver3.send('run something long');
  await ev3.until('the long command to start', () => spawnSync('pgrep', ['-f', long]).status === 0);
  await driver3.interrupt();
  assert.deepEqual(ev3.events('turn.interrupted').map((e) => e.data), [{ reason: 'interrupted by the user' }]);
  assert.equal(ev3.events('turn.completed').length, 0);
  assert.deepEqual(ev3.calls.slice(-2), [{ kind: 'exited', code: null, signal: 'SIGINT' }, { kind: 'turnEnded' }]);
  await ev3.until('the long command to be gone', () => spawnSync('pgrep', ['-f', long]).status !== 0, 2000);
  assert.ok(!existsSync(join(launch.cwd, 'end.txt')));
  await driver3.interrupt(); // nothing running: a no-op

  // Turn 4: the session survives the interrupt.
  const ev4 = new Recorder();
  const driver4 = newDriver(sessionId, ev4);
  server.enqueue({ text: 'still here' });
  driver4.send('are you there?');
  await ev4.turns(1);
  assert.equal(ev4.sessions.length, 0);
  assert.deepEqual(ev4.events('turn.completed').map((e) => [e.data.result, e.data.isError]), [['still here', false]]);
  const last = server.requests.at(-1)!.body;
  assert.deepEqual(said(last, 'user').slice(0, 2), ['please make the file', '-a second question, starting with a dash']);
  assert.equal(said(last, 'user').at(-1), 'are you there?');
  assert.ok(said(last, 'assistant').includes('second answer'));

  const all = JSON.stringify([ev.calls, ev2.calls, ev3.calls, ev4.calls]);
  assert.ok(!all.includes(API_KEY) && !all.includes(launch.env.OPENCODE_BASE_URL!), 'no env value in any event');
});

test('real opencode: a model error ends the turn with an error, and the next turn works', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedChatCompletions.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const ev = new Recorder();
  const driver = opencodeAgent.create(launch, ev);
  t.after(() => driver.stop());
  server.enqueue({ error: { status: 400, message: 'scripted failure' } });
  driver.send('hello?');
  await ev.turns(1);
  assert.equal(server.requests.length, 1, 'a 400 is not retried');
  assert.deepEqual(ev.events().map((e) => e.type), ['agent.started', 'session.started', 'error', 'turn.completed']);
  assert.equal(ev.events('error')[0]!.data.message, 'scripted failure');
  assert.deepEqual(ev.events('turn.completed').map((e) => [e.data.result, e.data.isError]), [['', true]]);
  assert.deepEqual(ev.calls.at(-2), { kind: 'exited', code: 1, signal: null });

  const ev2 = new Recorder();
  const driver2 = opencodeAgent.create({ ...launch, sessionId: ev.sessions[0]! }, ev2);
  t.after(() => driver2.stop());
  server.enqueue({ text: 'fine now' });
  driver2.send('again');
  await ev2.turns(1);
  assert.equal(ev2.events('turn.completed')[0]!.data.result, 'fine now');
});

test('real opencode: every bash command meets the approval gate (a plugin); a refusal stops it and the model is told why', { timeout: TIMEOUT }, async (t) => {
  const server = await ScriptedChatCompletions.start();
  t.after(() => server.close());
  const launch = setup(server, 'scripted-model');
  const drivers: AgentDriver[] = [];
  t.after(() => Promise.all(drivers.map((d) => d.stop())));
  const bash = (id: string, command: string) => ({ tools: [{ name: 'bash', arguments: { command, description: id }, id }] });
  const toolMessage = (id: string) => server.requests.flatMap((r) => r.body.messages).find((m: any) => m.role === 'tool' && m.tool_call_id === id);

  // A force push asks the user, who says no; sudo is refused outright; an everyday command runs unasked.
  const ev = new Recorder();
  server.enqueue(bash('call_push', GATE_PROBES.push), bash('call_sudo', GATE_PROBES.sudo), bash('call_echo', GATE_PROBES.echo), { text: 'ok' });
  const driver = opencodeAgent.create(launch, ev);
  drivers.push(driver);
  driver.send('push it');
  await ev.turns(1);
  assertGated(ev, launch.cwd, ['call_push', 'call_sudo', 'call_echo'].map((id) => JSON.stringify(toolMessage(id))));
  assert.deepEqual(ev.events('tool.result').map((e) => e.data.isError), [true, true, false]);

  // The same line, approved this time, runs (a new process continuing the session).
  const ev2 = new Recorder();
  ev2.userDecision = 'allow';
  server.enqueue(bash('call_push2', GATE_PROBES.push), { text: 'pushed' });
  const driver2 = opencodeAgent.create({ ...launch, sessionId: ev.sessions[0]! }, ev2);
  drivers.push(driver2);
  driver2.send('push it, I approve');
  await ev2.turns(1);
  assert.equal(ev2.gates.at(-1)!.action, 'ask');
  assert.ok(existsSync(join(launch.cwd, 'pushed.txt')), 'the approved command ran');
});
