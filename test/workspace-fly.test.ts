/**
 * A user's Fly workspace, end to end, with the Fly stand-in in place of api.machines.dev: `provider add fly`, `up`
 * with progress and the cost per hour, the daemon dialling the control plane's public URL, a conversation with real
 * Claude Code on a scripted model, down/up, suspend, delete and resume around the kept volume, delete --purge.
 * Every request the provider sent must be one Fly's published spec allows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cli, IMAGE, makeGitRepo } from './support/cli.js';
import { freePort, killHard, startServerProcess, type ServerProcess } from './support/cp-process.js';
import { FlyStandin } from './support/fly-standin.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { until } from './support/wait.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

const TOKEN = 'fo1_e2e-secret-token';
/** Containers on Docker's default bridge reach this host's services at its gateway. */
const GATEWAY = '172.17.0.1';
let fly: FlyStandin;
let model: ScriptedAnthropic;
before(async () => {
  fly = await FlyStandin.start({ token: TOKEN, apps: [{ name: 'cvm-e2e', org: 'personal' }] });
  model = await ScriptedAnthropic.start({ host: '0.0.0.0' });
});
after(async () => {
  await model.close();
  await fly.close();
});

const flyOptions = (extra: string[] = []) => ['--option', `token=${TOKEN}`, '--option', 'app=cvm-e2e', '--option', 'region=iad', '--option', `api-url=${fly.url}`, ...extra];

test('a Fly workspace runs Claude Code, stops, suspends, resumes around its kept volume and is purged', { timeout: 15 * 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-fly-'));
  const port = await freePort();
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(home, { port, args: ['--listen', `0.0.0.0:${port}`, '--public-url', `http://${GATEWAY}:${port}`] });
    const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
    await cli.ok(['provider', 'add', 'fly', ...flyOptions()]);
    const listed = (await cli.ok(['provider', 'list', '-v'])).stdout;
    assert.match(listed, /token=\*{8}/);
    assert.doesNotMatch(listed, /e2e-secret-token/);

    const up = await cli.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'fly', '--image', IMAGE, '--json']);
    const ws = JSON.parse(up.stdout) as WorkspaceInfo;
    assert.equal(ws.status, 'running');
    assert.equal(ws.projectDir, '/workspace/app');
    assert.equal(ws.size, 'shared-cpu-2x');
    for (const step of [
      /Estimated cost: \$0\.0158\/hour while running \(shared-cpu-2x: 2 shared CPU, 2048 MB\)/,
      /Creating volume: cvm_\w+, 10 GB in iad/,
      /Creating machine: claude-vm-[\w-]+ in iad/,
      /Copying files/,
      /Connecting workspace daemon/,
      /Waiting for the daemon to connect/,
    ]) assert.match(up.stderr, step);
    assert.doesNotMatch(up.stderr, /e2e-secret-token/);
    const machineId = () => [...fly.machines.values()].find((m) => m.name === `claude-vm-${ws.id}` && m.state !== 'destroyed')?.id;
    const first = machineId()!;
    assert.ok(first);

    const exec = await cli.run(['exec', ws.id, '--', 'sh', '-c', 'id -un; pwd; cat README.md untracked.txt; tr a-z A-Z; echo oops >&2; exit 42'], { input: 'hello\n' });
    assert.equal(exec.code, 42);
    assert.equal(exec.stdout, 'dev\n/workspace/app\n# demo\nnot in git\nHELLO\n');
    assert.match(exec.stderr, /oops/);
    const tty = await cli.run(['exec', '-t', ws.id, '--', 'sh']);
    assert.equal(tty.code, 1);
    assert.match(tty.stderr, /error: Fly's exec API has no terminal.*\nhint: .*config-ssh/);

    // Real Claude Code, in the machine, on the scripted model; its daemon dialled the public URL.
    await cli.ok(['agent', 'set', 'claude', '--base-url', `http://${GATEWAY}:${new URL(model.url).port}`, '--secret', 'ANTHROPIC_API_KEY=sk-ant-fly-test']);
    model.enqueue({ tools: [{ name: 'Write', input: { file_path: `${ws.projectDir}/from-claude.txt`, content: 'written on fly\n' } }] }, { text: 'done' });
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'write from-claude.txt'])).stdout.trim();
    const events = async () => (await cli.ok(['logs', conv, '--json'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
    await until('the turn to complete', async () => (await events()).some((e) => e.type === 'turn.completed'), { timeoutMs: 180_000, explain: () => `model requests: ${model.turnRequests.length}\n${server!.log().slice(-3000)}` });
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'from-claude.txt'])).stdout, 'written on fly\n');

    // The laptop closes mid-turn: with the control plane gone, the agent in the machine finishes on its own; back
    // on the same public URL, the control plane gets every event the daemon logged meanwhile, once each.
    let releaseBash!: () => void;
    model.enqueue({ tools: [{ name: 'Bash', input: { command: 'echo offline-$((6*7)) > offline.txt' } }], hold: new Promise<void>((r) => (releaseBash = r)) }, { text: 'finished alone' });
    const requestsBefore = model.turnRequests.length;
    await cli.ok(['send', conv, 'run a command']);
    await until('the held model request', () => model.turnRequests.length > requestsBefore, { timeoutMs: 180_000 });
    await killHard(server);
    releaseBash();
    const container = fly.machines.get(first)!.container!;
    const inMachine = () => spawnSync('docker', ['exec', container, 'cat', `/workspace/.claude-vm/conversations/${conv}/events.jsonl`], { encoding: 'utf8' }).stdout;
    await until('the turn to finish with no control plane', () => (inMachine().match(/"turn\.completed"/g) ?? []).length >= 2, { timeoutMs: 180_000 });
    server = await startServerProcess(home, { port, args: ['--listen', `0.0.0.0:${port}`, '--public-url', `http://${GATEWAY}:${port}`] });
    const truth = inMachine().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AnyEvent).seq);
    await until('every event at the restarted control plane', async () => (await events()).length >= truth.length, { timeoutMs: 120_000 });
    assert.deepEqual((await events()).map((e) => e.seq), truth, 'no gap, no duplicate');
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'offline.txt'])).stdout, 'offline-42\n');

    // down stops the machine; up starts the same one, with its files.
    await cli.ok(['workspace', 'down', ws.id]);
    assert.equal(fly.machines.get(first)!.state, 'stopped');
    assert.deepEqual((await cli.json<WorkspaceInfo[]>(['workspace', 'list', '--status', 'stopped'])).map((w) => w.id), [ws.id]);
    assert.match((await cli.ok(['workspace', 'up', ws.id])).stdout, /Started workspace/);
    assert.equal(fly.machines.get(first)!.state, 'started');
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'from-claude.txt'])).stdout, 'written on fly\n');

    // With stop-mode=suspend, down suspends.
    await cli.ok(['provider', 'set-options', 'fly', '--option', 'stop-mode=suspend']);
    await cli.ok(['workspace', 'down', ws.id]);
    assert.equal(fly.machines.get(first)!.state, 'suspended');
    await cli.ok(['workspace', 'up', ws.id]);
    assert.equal(fly.machines.get(first)!.state, 'started');

    // delete keeps the volume; up recreates a machine around it.
    const volume = [...fly.volumes.values()].find((v) => v.attached_machine_id === first)!;
    await cli.ok(['workspace', 'delete', ws.id, '-y']);
    assert.equal(fly.machines.get(first)!.state, 'destroyed');
    assert.equal(fly.volumes.get(volume.id)!.state, 'created');
    await cli.ok(['workspace', 'up', ws.id]);
    const second = machineId()!;
    assert.notEqual(second, first);
    assert.equal(fly.volumes.get(volume.id)!.attached_machine_id, second);
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'from-claude.txt'])).stdout, 'written on fly\n');

    const logs = await cli.ok(['workspace', 'logs', ws.id]);
    assert.match(logs.stdout, /launch created[\s\S]*start started/);

    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
    assert.equal(fly.machines.get(second)!.state, 'destroyed');
    assert.equal(fly.volumes.get(volume.id)!.state, 'destroyed');
    assert.deepEqual(await fly.backing.leftovers(), { containers: 0, volumes: 0 });
    assert.deepEqual(fly.violations, []);
  } finally {
    if (server) await killHard(server);
  }
});

test('without a public URL, up fails with one clear line and creates nothing on Fly', { timeout: 120_000 }, async () => {
  const cli = new Cli();
  await cli.ok(['provider', 'add', 'fly', ...flyOptions()]);
  const before = fly.requests.length;
  const r = await cli.run(['workspace', 'up', makeGitRepo(), '--provider', 'fly', '--image', IMAGE]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error: A Fly workspace dials the control plane, but this control plane has no public URL\.\nhint: .*--public-url/);
  assert.deepEqual(fly.requests.slice(before).map((q) => q.operationId), ['Apps_show']);
  // Missing required options are refused when the provider is added, before anything could use it.
  const bare = await cli.run(['provider', 'add', 'flybare', '--type', 'fly', '--option', `api-url=${fly.url}`]);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /^error: The fly provider needs --option token=…, --option app=… and --option region=…\./);
  assert.doesNotMatch((await cli.ok(['provider', 'list'])).stdout, /flybare/);
  const wrong = await cli.run(['workspace', 'up', makeGitRepo(), '--provider', 'fly', '--size', 'huge']);
  assert.match(wrong.stderr, /has no size "huge".*\nhint: Sizes: shared-cpu-1x, shared-cpu-2x/);
  assert.deepEqual(fly.violations, []);
});
