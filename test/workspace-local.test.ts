/** The local provider: no container, a directory under $CLAUDE_VM_HOME, and a plain warning that nothing is isolated. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Cli, makeGitRepo } from './support/cli.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

test('local workspaces copy the project, run commands in it and say they do not isolate', async () => {
  const cli = new Cli();
  const repo = makeGitRepo('notes');
  const up = await cli.ok(['workspace', 'up', repo, '--provider', 'local', '--json']);
  assert.match(up.stderr, /does not isolate/);
  const ws = JSON.parse(up.stdout) as WorkspaceInfo;
  assert.equal(ws.projectDir, join(cli.home, 'local', ws.id, 'workspace', 'notes'));
  const r = await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'pwd; cat untracked.txt; echo new > made.txt']);
  assert.equal(r.stdout, `${ws.projectDir}\nnot in git\n`);
  assert.ok(!existsSync(join(repo, 'made.txt')), 'the source directory is not touched');

  await cli.ok(['workspace', 'down', ws.id]);
  assert.equal((await cli.run(['exec', ws.id, '--', 'true'])).code, 1);
  await cli.ok(['workspace', 'up', ws.id]);
  assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'made.txt'])).stdout, 'new\n');
  await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  assert.ok(!existsSync(join(cli.home, 'local', ws.id)));
});

test('a git URL is cloned and --branch is checked out, created when missing', async () => {
  const cli = new Cli();
  const repo = makeGitRepo('upstream');
  spawnSync('git', ['-C', repo, 'branch', 'feature']);
  const a = JSON.parse((await cli.ok(['workspace', 'up', `file://${repo}`, '--provider', 'local', '--branch', 'feature', '--json'])).stdout) as WorkspaceInfo;
  assert.equal(a.project.sourceKind, 'git');
  assert.equal(a.branch, 'feature');
  assert.equal((await cli.ok(['exec', a.id, '--', 'git', 'rev-parse', '--abbrev-ref', 'HEAD'])).stdout, 'feature\n');
  assert.ok(!(await cli.ok(['exec', a.id, '--', 'ls'])).stdout.includes('untracked.txt'), 'a clone has only what git has');

  const b = JSON.parse((await cli.ok(['workspace', 'up', `file://${repo}`, '--provider', 'local', '--branch', 'task-42', '--json'])).stdout) as WorkspaceInfo;
  assert.equal((await cli.ok(['exec', b.id, '--', 'git', 'rev-parse', '--abbrev-ref', 'HEAD'])).stdout, 'task-42\n');
  assert.equal(a.project.id, b.project.id, 'two workspaces of one repository share a project');

  const bad = await cli.run(['workspace', 'up', `file://${repo}-missing`, '--provider', 'local']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: Could not clone file:\/\/.*-missing: /m);
  assert.equal((await cli.json<WorkspaceInfo[]>(['workspace', 'list'])).length, 2);
});
