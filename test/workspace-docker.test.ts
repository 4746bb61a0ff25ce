/** The lifecycle a user goes through on Docker: up from a local repo, exec, down/up, ssh into tmux, delete. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Cli, IMAGE, makeGitRepo, dockerResources, docker, BIN } from './support/cli.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

test('a workspace from a local git repo keeps its files across down/up and is gone after delete --purge', async () => {
  const cli = new Cli();
  const repo = makeGitRepo('shop');
  const up = await cli.ok(['workspace', 'up', repo, '--image', IMAGE, '--name', 'shop', '--json']);
  const ws = JSON.parse(up.stdout) as WorkspaceInfo;
  assert.match(ws.id, /^[a-z]+-[a-z]+-\d{4}$/);
  assert.equal(ws.status, 'running');
  assert.equal(ws.projectDir, '/workspace/shop');
  assert.equal(ws.branch, 'main');
  assert.match(up.stderr, /Copying files/, 'progress is shown');

  // Copied, not bind-mounted: tracked, untracked and ignored files are all there, owned by the non-root user.
  const ls = await cli.ok(['exec', 'shop', '--', 'sh', '-c', 'pwd; id -un; cat README.md untracked.txt node_modules/left-pad/index.js; git status --short; stat -c %U README.md']);
  assert.match(ls.stdout, /^\/workspace\/shop\ndev\n# demo\nnot in git\nmodule\.exports = 1;\n\?\? untracked\.txt\ndev\n$/);
  // The only thing from the host inside is the control plane's socket directory, for the daemon's tunnel.
  const mounts = docker('inspect', '-f', '{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}', `claude-vm-${ws.id}`).out.split(' ').sort();
  assert.deepEqual(mounts, ['bind:/run/claude-vm', 'volume:/workspace']);

  await cli.ok(['exec', ws.id.slice(0, 8), '--', 'sh', '-c', 'echo from-agent > made-in-workspace.txt && mkdir -p node_modules/big && echo x > node_modules/big/f']);
  const down = await cli.ok(['workspace', 'down', 'shop']);
  assert.match(down.stdout, /Stopped workspace/);
  const stopped = await cli.json<WorkspaceInfo[]>(['workspace', 'list', '--status', 'stopped']);
  assert.deepEqual(stopped.map((w) => w.id), [ws.id]);
  assert.equal(docker('inspect', '-f', '{{.State.Running}}', `claude-vm-${ws.id}`).out, 'false');

  const stoppedExec = await cli.run(['exec', 'shop', '--', 'true']);
  assert.equal(stoppedExec.code, 1);
  assert.match(stoppedExec.stderr, /is stopped.*\nhint: Start it with `claude-vm workspace up/);

  const resumed = await cli.ok(['workspace', 'up', 'shop']);
  assert.match(resumed.stdout, /Started workspace/);
  const after = await cli.ok(['exec', 'shop', '--', 'cat', 'made-in-workspace.txt', 'node_modules/big/f', 'untracked.txt']);
  assert.equal(after.stdout, 'from-agent\nx\nnot in git\n');

  const again = await cli.ok(['workspace', 'up', 'shop']);
  assert.match(again.stdout, /Already running/);

  await cli.ok(['workspace', 'delete', 'shop', '--purge', '-y']);
  assert.deepEqual(dockerResources(ws.id), { containers: [], volumes: [] });
  assert.deepEqual(await cli.json(['workspace', 'list']), []);
});

test('exec passes stdin, stdout, stderr and the exit code through', async () => {
  const cli = new Cli();
  const { stdout } = await cli.ok(['workspace', 'up', makeGitRepo(), '--image', IMAGE, '--json']);
  const id = (JSON.parse(stdout) as WorkspaceInfo).id;
  const piped = await cli.run(['exec', id, '--', 'sh', '-c', 'tr a-z A-Z; echo oops >&2; exit 42'], { input: 'hello\n' });
  assert.equal(piped.code, 42);
  assert.equal(piped.stdout, 'HELLO\n');
  assert.match(piped.stderr, /oops/);
  const missing = await cli.run(['exec', id, '--', 'no-such-command']);
  assert.notEqual(missing.code, 0);
  await cli.ok(['workspace', 'delete', id, '--purge', '-y']);
});

test('delete without --purge keeps the data; up brings the workspace back with agent state and caches', async () => {
  const cli = new Cli();
  const { stdout } = await cli.ok(['workspace', 'up', makeGitRepo(), '--image', IMAGE, '--json']);
  const id = (JSON.parse(stdout) as WorkspaceInfo).id;
  // Agent state in ~ and package caches must live on the volume (seed 003), not in the container layer.
  await cli.ok(['exec', id, '--', 'sh', '-c', 'mkdir -p ~/.claude && echo session > ~/.claude/s.json && mkdir -p ~/.npm && echo c > ~/.npm/cached']);
  const del = await cli.ok(['workspace', 'delete', id, '-y']);
  assert.match(del.stdout, /data is kept/);
  assert.deepEqual(dockerResources(id), { containers: [], volumes: [`claude-vm-${id}`] });
  assert.deepEqual(await cli.json(['workspace', 'list']), [], 'deleted workspaces are hidden by default');
  const deleted = await cli.json<WorkspaceInfo[]>(['workspace', 'list', '--status', 'deleted']);
  assert.equal(deleted[0]?.id, id);

  await cli.ok(['workspace', 'up', id]);
  const r = await cli.ok(['exec', id, '--', 'sh', '-c', 'cat ~/.claude/s.json ~/.npm/cached README.md']);
  assert.equal(r.stdout, 'session\nc\n# demo\n');
  await cli.ok(['workspace', 'delete', id, '--purge', '-y']);
  assert.deepEqual(dockerResources(id), { containers: [], volumes: [] });
});

test('ssh opens a tmux shell in the project directory that a later ssh reattaches to', async () => {
  const cli = new Cli();
  const { stdout } = await cli.ok(['workspace', 'up', makeGitRepo('tmuxy'), '--image', IMAGE, '--json']);
  const id = (JSON.parse(stdout) as WorkspaceInfo).id;
  // A real terminal on the host: a detached tmux session runs `claude-vm ssh`, as a person at a terminal would.
  // Each visit gets its own host tmux server: a new session on a server that is still shutting down can vanish.
  let host = `cvm-ssh-${process.pid}-1`;
  const tmux = (...a: string[]) => spawnSync('tmux', ['-L', host, ...a], { encoding: 'utf8' });
  const env = `CLAUDE_VM_HOME=${cli.home}`;
  try {
    tmux('new-session', '-d', '-x', '120', '-y', '30', `${env} ${process.execPath} ${BIN} ssh ${id}; sleep 60`);
    await until(async () => (await cli.run(['exec', id, '--', 'tmux', 'has-session', '-t', 'main'])).code === 0, () => tmux('capture-pane', '-p').stdout);
    // The workspace terminal takes the size of the user's terminal.
    assert.match((await cli.ok(['exec', id, '--', 'tmux', 'list-clients'])).stdout, /main \[120x30 /);
    tmux('send-keys', 'export MARK=first-visit; pwd > where.txt', 'Enter');
    await until(async () => (await cli.run(['exec', id, '--', 'test', '-s', 'where.txt'])).code === 0);
    // The laptop goes away: the host terminal dies, the workspace shell lives on.
    tmux('kill-server');
    host = `cvm-ssh-${process.pid}-2`;
    tmux('new-session', '-d', '-x', '120', '-y', '30', `${env} ${process.execPath} ${BIN} ssh ${id}; sleep 60`);
    await until(() => Promise.resolve(tmux('capture-pane', '-p').stdout.includes('$')), () => tmux('capture-pane', '-p').stdout);
    tmux('send-keys', 'echo "$MARK" > mark.txt', 'Enter');
    await until(async () => (await cli.run(['exec', id, '--', 'test', '-s', 'mark.txt'])).code === 0);
    const r = await cli.ok(['exec', id, '--', 'cat', 'where.txt', 'mark.txt']);
    assert.equal(r.stdout, '/workspace/tmuxy\nfirst-visit\n');
  } finally {
    tmux('kill-server');
    await cli.run(['workspace', 'delete', id, '--purge', '-y']);
  }
});

async function until(check: () => Promise<boolean>, explain: () => string = () => '', timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`condition not met in time\n${explain()}`);
}
