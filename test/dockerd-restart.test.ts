/**
 * Persistence across a Docker engine restart, on a private dockerd of our own (so the shared engine the other
 * tests use is never restarted). It also covers a provider configured with --option host=… and a foreign image.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cli, FOREIGN_IMAGE, makeGitRepo } from './support/cli.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

const root = mkdtempSync(join(tmpdir(), 'cvm-dockerd-'));
const sock = join(root, 'docker.sock');
let dockerd: ChildProcess | undefined;

function startEngine(): ChildProcess {
  // Its own network namespace: a second dockerd with --bridge=none would otherwise delete the shared docker0.
  const p = spawn('unshare', ['--net', '--', 'dockerd', 
    '--data-root', join(root, 'data'), '--exec-root', join(root, 'exec'), '--pidfile', join(root, 'dockerd.pid'),
    '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip6tables=false',
  ], { stdio: 'ignore' });
  for (let i = 0; i < 120; i++) {
    if (spawnSync('docker', ['-H', `unix://${sock}`, 'info'], { stdio: 'ignore' }).status === 0) return p;
    spawnSync('sleep', ['0.25']);
  }
  throw new Error('private dockerd did not start');
}

async function stopEngine(p: ChildProcess): Promise<void> {
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
}

before(() => {
  dockerd = startEngine();
});

after(async () => {
  if (dockerd && dockerd.exitCode === null) await stopEngine(dockerd);
  rmSync(root, { recursive: true, force: true });
});

test('files, running state and stopped state survive a restart of the Docker engine', async () => {
  const loaded = spawnSync('sh', ['-c', `docker save ${FOREIGN_IMAGE} | docker -H unix://${sock} load -q`], { encoding: 'utf8' });
  assert.equal(loaded.status, 0, loaded.stderr);
  const cli = new Cli();
  await cli.ok(['provider', 'add', 'box', '--type', 'docker', '--option', `host=unix://${sock}`]);
  const run = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo(), '--provider', 'box', '--image', FOREIGN_IMAGE, '--name', 'runner', '--json'])).stdout) as WorkspaceInfo;
  const stop = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo(), '--provider', 'box', '--image', FOREIGN_IMAGE, '--name', 'sleeper', '--json'])).stdout) as WorkspaceInfo;
  assert.equal((await cli.ok(['exec', 'runner', '--', 'id', '-u'])).stdout, '1000\n', 'foreign images still run commands as the non-root workspace user');
  await cli.ok(['exec', 'runner', '--', 'sh', '-c', 'echo survived > a.txt']);
  await cli.ok(['exec', 'sleeper', '--', 'sh', '-c', 'echo slept > b.txt']);
  await cli.ok(['workspace', 'down', 'sleeper']);

  await stopEngine(dockerd!);
  const during = await cli.json<WorkspaceInfo[]>(['workspace', 'list']);
  assert.equal(during.length, 2, 'listing still works while the engine is down');
  dockerd = startEngine();

  const list = await cli.json<WorkspaceInfo[]>(['workspace', 'list']);
  const status = Object.fromEntries(list.map((w) => [w.name, w.status]));
  assert.deepEqual(status, { runner: 'running', sleeper: 'stopped' }, 'running workspaces come back by themselves; stopped ones stay down');
  assert.equal((await cli.ok(['exec', 'runner', '--', 'cat', 'a.txt'])).stdout, 'survived\n');
  await cli.ok(['workspace', 'up', 'sleeper']);
  assert.equal((await cli.ok(['exec', 'sleeper', '--', 'cat', 'b.txt'])).stdout, 'slept\n');
  await cli.ok(['workspace', 'delete', run.id, '--purge', '-y']);
  await cli.ok(['workspace', 'delete', stop.id, '--purge', '-y']);
});
