/** Bad input: each case gets one clear line naming the fix, a non-zero exit, and leaves nothing behind. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cli, IMAGE, makeGitRepo, resourcesOf } from './support/cli.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

/** Asserts the user-facing error shape: `error: …` then an optional `hint: …`, nothing else (no stack). */
function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, 'non-zero exit');
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('['));
  assert.match(lines[0] ?? '', /^error: /);
  assert.match(lines[0]!, pattern);
  assert.ok(lines.length <= 2 && (lines.length < 2 || lines[1]!.startsWith('hint: ')), `unexpected output: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('unknown id, ambiguous prefix and duplicate name are refused', async () => {
  const cli = new Cli();
  const repo = makeGitRepo();
  const a = (JSON.parse((await cli.ok(['workspace', 'up', repo, '--image', IMAGE, '--name', 'alpha', '--json'])).stdout) as WorkspaceInfo).id;
  const b = (JSON.parse((await cli.ok(['workspace', 'up', repo, '--image', IMAGE, '--name', 'alpine', '--json'])).stdout) as WorkspaceInfo).id;
  try {
    assertOneLineError(await cli.run(['exec', 'zzz-nope', '--', 'true']), /No workspace matches "zzz-nope"/);
    assertOneLineError(await cli.run(['workspace', 'down', 'alp']), /"alp" matches 2 workspaces/);
    const before = resourcesOf(cli);
    assertOneLineError(await cli.run(['workspace', 'up', repo, '--image', IMAGE, '--name', 'alpha']), /named "alpha" already exists/);
    assertOneLineError(await cli.run(['workspace', 'up', repo, '--image', IMAGE, '--name', 'Bad Name']), /Invalid workspace name/);
    assert.deepEqual(resourcesOf(cli), before);
    // Prefixes work when they are unique, by id or by name.
    await cli.ok(['workspace', 'down', 'alph']);
    assert.equal((await cli.json<WorkspaceInfo>(['workspace', 'show', a])).status, 'stopped');
  } finally {
    await cli.run(['workspace', 'delete', a, '--purge', '-y']);
    await cli.run(['workspace', 'delete', b, '--purge', '-y']);
  }
  assert.deepEqual(resourcesOf(cli), []);
});

test('a missing path, a file, a missing image and an unknown provider create nothing', async () => {
  const cli = new Cli();
  const repo = makeGitRepo();
  writeFileSync(join(repo, 'file.txt'), 'x');
  assertOneLineError(await cli.run(['workspace', 'up', '/no/such/dir', '--image', IMAGE]), /Path \/no\/such\/dir does not exist/);
  assertOneLineError(await cli.run(['workspace', 'up', join(repo, 'file.txt'), '--image', IMAGE]), /is not a directory/);
  assertOneLineError(await cli.run(['workspace', 'up', 'no-such-thing']), /No workspace, directory or repository matches/);
  assertOneLineError(await cli.run(['workspace', 'up', repo, '--image', 'claude-vm/does-not-exist:1']), /Image claude-vm\/does-not-exist:1 is not available locally and could not be pulled/);
  assertOneLineError(await cli.run(['workspace', 'up', repo, '--provider', 'nope']), /No provider named "nope"/);
  assert.deepEqual(resourcesOf(cli), []);
  assert.deepEqual(await cli.json(['workspace', 'list', '--status', 'error']), []);
  assert.deepEqual(await cli.json(['workspace', 'list']), []);
});

test('a repository that cannot be cloned rolls back the container, the volume and the row', async () => {
  const cli = new Cli();
  const r = await cli.run(['workspace', 'up', 'https://127.0.0.1:1/nobody/nothing.git', '--image', IMAGE]);
  assertOneLineError(r, /Could not clone https:\/\/127\.0\.0\.1:1\/nobody\/nothing\.git: .*(refused|connect)/i);
  assert.match(r.stderr, /Cleaning up/);
  assert.deepEqual(resourcesOf(cli), []);
  assert.deepEqual(await cli.json(['workspace', 'list', '--status', 'error']), []);
  assert.deepEqual(await cli.json(['workspace', 'list']), []);
});

test('an unreachable Docker engine is named with the fix', async () => {
  const cli = new Cli();
  await cli.ok(['provider', 'add', 'far', '--type', 'docker', '--option', 'host=unix:///tmp/claude-vm-no-such.sock']);
  assertOneLineError(await cli.run(['workspace', 'up', makeGitRepo(), '--provider', 'far']), /Cannot reach the Docker engine at unix:\/\/\/tmp\/claude-vm-no-such\.sock/);
  assert.deepEqual(await cli.json(['workspace', 'list']), []);
  const withoutEngine = await cli.run(['workspace', 'up', makeGitRepo(), '--provider', 'far']);
  assert.match(withoutEngine.stderr, /hint: Start Docker/);
});

test('a workspace whose container vanished shows error with the reason, and up recreates it from the volume', async () => {
  const cli = new Cli();
  const { stdout } = await cli.ok(['workspace', 'up', makeGitRepo(), '--image', IMAGE, '--json']);
  const id = (JSON.parse(stdout) as WorkspaceInfo).id;
  await cli.ok(['exec', id, '--', 'sh', '-c', 'echo kept > kept.txt']);
  const { spawnSync } = await import('node:child_process');
  spawnSync('docker', ['rm', '-f', `claude-vm-${id}`]);
  const [w] = await cli.json<WorkspaceInfo[]>(['workspace', 'list', '--status', 'error']);
  assert.equal(w?.id, id);
  assert.match(w!.statusReason ?? '', /container no longer exists/);
  const table = await cli.ok(['workspace', 'list']);
  assert.match(table.stdout, new RegExp(`${id}: the container no longer exists`));
  await cli.ok(['workspace', 'up', id]);
  assert.equal((await cli.ok(['exec', id, '--', 'cat', 'kept.txt'])).stdout, 'kept\n');
  await cli.ok(['workspace', 'delete', id, '--purge', '-y']);
});

test('delete asks for confirmation and refuses without a terminal unless -y', async () => {
  const cli = new Cli();
  const { stdout } = await cli.ok(['workspace', 'up', makeGitRepo(), '--image', IMAGE, '--json']);
  const id = (JSON.parse(stdout) as WorkspaceInfo).id;
  assertOneLineError(await cli.run(['workspace', 'delete', id, '--purge']), /confirmation needed/);
  assert.equal((await cli.json<WorkspaceInfo>(['workspace', 'show', id])).status, 'running');
  await cli.ok(['workspace', 'delete', id, '--purge', '--yes']);
  assert.deepEqual(resourcesOf(cli), []);
});
