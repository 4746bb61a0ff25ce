/**
 * Workspaces on a remote Docker host over SSH, as a user with a VPS would run them: a second dockerd behind a real
 * sshd. The agent keeps working while the control plane is down ("the laptop is closed"); when it comes back, the
 * daemon reconnects through the re-opened SSH tunnel and every event is there. A dropped SSH connection heals.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cli, IMAGE, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { freePort, killHard, startServerProcess, type ServerProcess } from './support/cp-process.js';
import { startRemoteDockerHost, type RemoteDockerHost } from './support/remote-docker.js';
import { until } from './support/wait.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

let model: ScriptedAnthropic;
let remote: RemoteDockerHost;
before(async () => {
  model = await ScriptedAnthropic.start();
  remote = await startRemoteDockerHost();
});
after(async () => {
  await model?.close();
  await remote?.close();
});

const optionArgs = (o: Record<string, string>) => Object.entries(o).flatMap(([k, v]) => ['--option', `${k}=${v}`]);
const events = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);

test('an unreachable SSH host or a missing option is one clear error, and leaves nothing behind', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-ssh-bad-'));
  const server = await startServerProcess(home, { port: await freePort() });
  const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  try {
    const missing = await cli.run(['provider', 'add', 'box', '--type', 'ssh']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: The ssh provider needs --option host=…/);
    const closed = await freePort();
    await cli.ok(['provider', 'add', 'gone', '--type', 'ssh', ...optionArgs({ ...remote.options, port: String(closed) })]);
    const up = await cli.run(['workspace', 'up', makeGitRepo('nowhere'), '--provider', 'gone', '--image', IMAGE]);
    assert.equal(up.code, 1);
    assert.match(up.stderr, new RegExp(`error: SSH to root@127.0.0.1:${closed} refused the connection or the login: .*Connection refused`));
    assert.deepEqual(await cli.json<unknown[]>(['workspace', 'list']), []);
  } finally {
    await killHard(server);
  }
});

test('on a remote Docker host, the agent works on while the control plane is down, and nothing is missed', { timeout: 15 * 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-ssh-'));
  const port = await freePort();
  let server: ServerProcess = await startServerProcess(home, { port });
  const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  let container = '';
  const explain = () =>
    [
      `server log:\n${server.log().split('\n').slice(-30).join('\n')}`,
      `daemon log:\n${container ? remote.docker('exec', container, 'tail', '-n', '30', '/workspace/.claude-vm/daemon.log').stdout : ''}`,
    ].join('\n');
  try {
    await cli.ok(['provider', 'add', 'box', '--type', 'ssh', ...optionArgs(remote.options)]);
    await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', 'ANTHROPIC_API_KEY=sk-ant-ssh-test']);
    const up = await cli.ok(['workspace', 'up', makeGitRepo('remote-app'), '--provider', 'box', '--image', IMAGE, '--json']);
    const ws = JSON.parse(up.stdout) as WorkspaceInfo;
    container = `claude-vm-${ws.id}`;
    assert.equal(remote.docker('inspect', '-f', '{{.State.Running}}', container).stdout.trim(), 'true', 'the workspace runs on the remote engine');
    assert.notEqual(spawnSync('docker', ['inspect', container]).status, 0, 'and not on this machine');
    assert.equal((await cli.ok(['exec', ws.id, '--', 'git', 'log', '--format=%s'])).stdout, 'init\n', 'the project arrived with its history');

    let releaseBash!: () => void;
    model.enqueue(
      { tools: [{ name: 'Write', input: { file_path: `${ws.projectDir}/a.txt`, content: 'one\n' } }] },
      { tools: [{ name: 'Bash', input: { command: 'echo survived-$((6*7)) > b.txt; cat b.txt' } }], hold: new Promise<void>((r) => (releaseBash = r)) },
      { text: 'all done' },
    );
    const requestsBefore = model.turnRequests.length;
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'write a.txt, then run a command'])).stdout.trim();
    await until('the held second model request', () => model.turnRequests.length >= requestsBefore + 2, { explain, timeoutMs: 180_000, everyMs: 200 });

    // The laptop closes: the control plane is gone (and its SSH tunnel with it), mid-turn.
    await killHard(server);
    releaseBash();
    const log = `/workspace/.claude-vm/conversations/${conv}/events.jsonl`;
    await until('the agent to finish its turn with no control plane', () => remote.docker('exec', container, 'cat', log).stdout.includes('"turn.completed"'), { explain, timeoutMs: 180_000, everyMs: 500 });
    assert.equal(remote.docker('exec', container, 'cat', `${ws.projectDir}/b.txt`).stdout, 'survived-42\n');

    // The laptop opens: the control plane re-opens the tunnel by itself, the daemon reconnects and catches up.
    server = await startServerProcess(home, { port });
    const truth = events(remote.docker('exec', container, 'cat', log).stdout);
    let stored: AnyEvent[] = [];
    await until('the control plane to hold every event of the turn', async () => {
      stored = events((await cli.run(['logs', conv, '--json'])).stdout);
      return stored.length >= truth.length;
    }, { explain, timeoutMs: 120_000, everyMs: 500 });
    assert.deepEqual(stored.map((e) => e.seq), truth.map((e) => e.seq), 'no gap, no duplicate');
    assert.ok(stored.some((e) => e.type === 'tool.result' && JSON.stringify(e.data).includes('survived-42')));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'a.txt'])).stdout, 'one\n');

    // The SSH connection drops (the host's sshd restarts, killing every session): the tunnel heals, and the
    // conversation takes a new message.
    await remote.stopSshd();
    await remote.startSshd();
    model.enqueue({ text: 'still here' });
    await until('a message to go through the healed tunnel', async () => (await cli.run(['send', conv, 'are you there?'])).code === 0, { explain, timeoutMs: 120_000, everyMs: 1000 });
    await until('the answer', async () => (await cli.run(['logs', conv, '--json'])).stdout.includes('still here'), { explain, timeoutMs: 120_000, everyMs: 500 });

    const show = await cli.json<WorkspaceInfo & { provider: string }>(['workspace', 'show', ws.id]);
    assert.equal(show.provider, 'box');
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
    assert.notEqual(remote.docker('inspect', container).status, 0, 'the container is gone');
    assert.notEqual(remote.docker('volume', 'inspect', container).status, 0, 'the volume is gone');
  } finally {
    await killHard(server);
  }
});
