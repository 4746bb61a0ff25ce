/**
 * The walls around an agent that runs with every permission inside its workspace: it cannot write outside
 * /workspace and its home, cannot become root (no capabilities, no-new-privileges, no sudo), sees no Docker socket;
 * a fork bomb and a memory hog hit the workspace's own limits while the host carries on; and the agent's API key
 * reaches the agent and nothing else (not the volume, snapshots, logs, events, JSON output).
 * Everything runs on the real Docker engine, with the real Claude Code against a scripted model.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Cli, FOREIGN_IMAGE, IMAGE, docker, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { until } from './support/wait.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

let model: ScriptedAnthropic;
before(async () => {
  model = await ScriptedAnthropic.start();
});
after(() => model.close());

const up = async (cli: Cli, args: string[]) => JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('app'), '--size', 'small', '--json', ...args])).stdout) as WorkspaceInfo;
const sh = (cli: Cli, id: string, script: string) => cli.run(['exec', id, '--', 'sh', '-c', script]);
/** Capability sets from /proc/self/status, as hex. */
const caps = (status: string) => Object.fromEntries([...status.matchAll(/^(Cap\w+|NoNewPrivs):\s+(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));

for (const [kind, image, bounding] of [
  ['an image built for claude-vm', IMAGE, '0000000000000000'],
  // CHOWN, DAC_OVERRIDE, FOWNER: what the foreign image's root bootstrap needs to add the user (bits 0, 1, 3).
  ['a foreign image', FOREIGN_IMAGE, '000000000000000b'],
] as const) {
  test(`in ${kind} the agent user writes only to /workspace and its home, holds no capability and cannot become root`, { timeout: 5 * 60_000 }, async () => {
    const cli = new Cli();
    const ws = await up(cli, ['--image', image]);
    const container = `claude-vm-${ws.id}`;
    try {
      const status = (await cli.ok(['exec', ws.id, '--', 'cat', '/proc/self/status'])).stdout;
      assert.deepEqual(caps(status), { CapInh: '0000000000000000', CapPrm: '0000000000000000', CapEff: '0000000000000000', CapBnd: bounding, CapAmb: '0000000000000000', NoNewPrivs: '1' });

      for (const path of ['/etc/claude-vm-test', '/usr/local/bin/claude-vm-test', '/opt/claude-vm-test', '/claude-vm-test', '/root/claude-vm-test']) {
        const r = await sh(cli, ws.id, `echo x > ${path}`);
        assert.notEqual(r.code, 0, `${path} must not be writable`);
        assert.match(r.stderr, /Permission denied|Read-only/, path);
      }
      await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'echo x > /workspace/ok && echo x > "$HOME/ok" && echo x > /tmp/ok && id -u']);

      // sudo is absent, or refused; su wants a password it cannot get.
      const sudo = await sh(cli, ws.id, 'command -v sudo >/dev/null || { echo no-sudo; exit 1; }; sudo -n id -u');
      assert.notEqual(sudo.code, 0);
      assert.doesNotMatch(sudo.stdout, /^0$/m);
      assert.notEqual((await sh(cli, ws.id, 'su -c "id -u" root </dev/null')).code, 0);

      // A setuid-root binary (as an image might ship one) runs, but as the user: no-new-privileges ignores the bit.
      assert.equal(docker('exec', '-u', '0', container, 'sh', '-c', 'cp /bin/sh /tmp/rootsh && chmod 4755 /tmp/rootsh').code, 0);
      assert.match(docker('exec', container, 'stat', '-c', '%A %u', '/tmp/rootsh').out, /^-rwsr-xr-x 0$/);
      const escalated = await cli.ok(['exec', ws.id, '--', '/tmp/rootsh', '-p', '-c', 'id -u; id -ru; if cat /etc/shadow >/dev/null 2>&1; then echo read-shadow; fi']);
      assert.equal(escalated.stdout, '1000\n1000\n');

      // No Docker socket anywhere, no engine address in the environment; the only host path inside is the
      // control plane's socket directory (an API that wants a token).
      const sockets = await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'find / -xdev \\( -name docker.sock -o -name containerd.sock -o -name dockershim.sock \\) 2>/dev/null; ls /var/run/docker.sock /run/docker.sock 2>/dev/null; env | grep -i ^docker_ || true; ls -A /run/claude-vm']);
      assert.equal(sockets.stdout, 'server.sock\n');
      const mounts = docker('inspect', '-f', '{{range .Mounts}}{{.Type}}:{{.Source}}:{{.Destination}} {{end}}', container).out;
      assert.doesNotMatch(mounts, /docker\.sock|containerd/);
    } finally {
      await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
    }
  });
}

test('a fork bomb stops at the workspace process limit; the host can still fork and run docker, and the workspace comes back', { timeout: 5 * 60_000 }, async () => {
  const cli = new Cli();
  const ws = await up(cli, ['--image', IMAGE]);
  const container = `claude-vm-${ws.id}`;
  try {
    const limit = Number(docker('inspect', '-f', '{{.HostConfig.PidsLimit}}', container).out);
    assert.equal(limit, 1024, 'the small size allows 1024 processes');
    // Detached, so this exec returns; the bomb then owns every process slot the workspace has.
    await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'setsid sh -c \'b() { b | b & }; b\' >/dev/null 2>&1 </dev/null &']);
    const pids = () => Number(spawnSync('docker', ['stats', '--no-stream', '--format', '{{.PIDs}}', container], { encoding: 'utf8' }).stdout.trim());
    // Reached: the count is at the limit, or the kernel has refused a fork there. Under load the bomb's shells
    // die as fast as they fork, so a sample of the count alone can keep missing the moment it was full.
    const events = pidsEvents(docker('inspect', '-f', '{{.Id}}', container).out.trim());
    const refusedForks = () => (events ? Number(/^max (\d+)/m.exec(readFileSync(events, 'utf8'))?.[1] ?? 0) : 0);
    const reached = await until('the fork bomb to reach the process limit', () => {
      const n = pids();
      return n >= limit - 8 || refusedForks() > 0 ? n : undefined;
    });
    assert.ok(reached <= limit, `${reached} processes, never more than ${limit}`);

    // The host is fine: it forks, and its engine answers.
    assert.equal(spawnSync('sh', ['-c', 'true & wait'], { encoding: 'utf8' }).status, 0);
    assert.equal(docker('ps', '--format', '{{.Names}}').code, 0);

    // The user stops it: a forced stop ends every process; the workspace starts clean.
    await cli.ok(['workspace', 'down', ws.id, '--force']);
    assert.equal((await cli.json<WorkspaceInfo>(['workspace', 'show', ws.id])).status, 'stopped');
    await cli.ok(['workspace', 'up', ws.id]);
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'README.md'])).stdout, '# demo\n');
  } finally {
    await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});

test('a memory hog is killed at the workspace memory limit; the host and the workspace carry on', { timeout: 5 * 60_000 }, async () => {
  const cli = new Cli();
  const ws = await up(cli, ['--image', IMAGE]);
  const container = `claude-vm-${ws.id}`;
  try {
    const [memory, swap] = docker('inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}', container).out.split(' ').map(Number);
    assert.equal(memory, 2048 * 1024 * 1024, 'the small size has 2 GB');
    assert.equal(swap, memory, 'and no swap beyond it');
    // Touches 64 MB at a time up to 6 GB, three times the limit: printing "survived" would mean no limit held.
    const hog = 'const a = []; for (let i = 0; i < 96; i++) a.push(Buffer.alloc(64 << 20, 1)); console.log("survived")';
    const r = await cli.run(['exec', ws.id, '--', 'node', '-e', hog]);
    assert.doesNotMatch(r.stdout, /survived/);
    assert.equal(r.code, 137, 'killed (SIGKILL) by the out-of-memory killer');

    assert.equal(spawnSync('sh', ['-c', 'true & wait']).status, 0);
    assert.equal(docker('ps', '--format', '{{.Names}}').code, 0);
    // Only the hog went: the workspace and its files are still there.
    assert.equal((await cli.json<WorkspaceInfo>(['workspace', 'show', ws.id])).status, 'running');
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'README.md'])).stdout, '# demo\n');
  } finally {
    await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});

test("the agent's API key reaches the agent and nothing else: not the volume, snapshots, logs, events or JSON output (read-only root)", { timeout: 8 * 60_000 }, async () => {
  const cli = new Cli();
  const canary = `sk-ant-canary-${randomBytes(12).toString('hex')}`;
  const other = `sk-other-canary-${randomBytes(12).toString('hex')}`;
  // The tail too: a program that keeps "the last characters of the key" must not keep these either.
  const needles = [canary, canary.slice(-16), other];
  await cli.ok(['provider', 'add', 'locked', '--type', 'docker', '--option', 'network=host', '--option', 'read-only-root=true']);
  await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', `ANTHROPIC_API_KEY=${canary}`]);
  await cli.ok(['agent', 'set', 'codex', '--secret', `OPENAI_API_KEY=${other}`]);
  const ws = await up(cli, ['--image', IMAGE, '--provider', 'locked']);
  const container = `claude-vm-${ws.id}`;
  try {
    // Agents work on a read-only root: the tool writes to the project and to /tmp; the image itself stays read-only.
    assert.match((await sh(cli, ws.id, 'touch /usr/local/x')).stderr, /Read-only file system/);
    model.enqueue({ tools: [{ name: 'Bash', input: { command: 'echo hello > note.txt && env > /tmp/agent-env && cat note.txt' } }] }, { text: 'noted' });
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'write a note'])).stdout.trim();
    const events = async () => (await cli.ok(['logs', conv, '--json'])).stdout;
    await until('the turn to end', async () => (/"type":"turn.completed"/.test(await events()) ? true : undefined));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'note.txt'])).stdout, 'hello\n');

    // The agent process has its key (the model saw it), and no other agent's secret nor the server's token.
    assert.ok(model.requests.some((r) => r.headers['x-api-key'] === canary), 'Claude Code authenticated with the key');
    const agentEnv = (await cli.ok(['exec', ws.id, '--', 'cat', '/tmp/agent-env'])).stdout;
    assert.match(agentEnv, new RegExp(`^ANTHROPIC_API_KEY=${canary}$`, 'm'));
    assert.ok(!agentEnv.includes(other), "another agent's secret is not in this agent's environment");
    assert.ok(!agentEnv.includes(readFileSync(join(cli.home, 'token'), 'utf8').trim()), "the control plane's admin token is not either");
    // No command line carries it (secrets go on standard input), nor the container's own environment.
    const cmdlines = docker('exec', '-u', '0', container, 'sh', '-c', 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "').out;
    assert.match(cmdlines, /claude/);
    assert.ok(!cmdlines.includes(canary), 'no command line holds the key');
    assert.doesNotMatch(docker('inspect', container).out, new RegExp(canary));

    await cli.ok(['workspace', 'snapshot', ws.id]);
    // The volume (project, agent sessions and settings, conversation logs, the daemon's log), all the user's:
    // read as the user (root in the container has no capability to read other users' private files).
    for (const n of needles) {
      const found = docker('exec', '-u', '1000', container, 'grep', '-rlaF', n, '/workspace');
      assert.equal(found.out, '', `${n} is on the volume`);
    }
    // Every file of the control plane: state (secrets are sealed), its log, the snapshot store.
    assert.deepEqual(filesContaining(cli.home, needles), []);
    // What a user or the web UI reads.
    const outputs = [
      await events(),
      (await cli.ok(['workspace', 'show', ws.id, '--json'])).stdout,
      (await cli.ok(['workspace', 'list', '--json'])).stdout,
      (await cli.ok(['agent', 'list', '--json'])).stdout,
      (await cli.ok(['conversations', '--json'])).stdout,
      (await cli.ok(['workspace', 'snapshots', ws.id, '--json'])).stdout,
      (await cli.ok(['audit', '--json'])).stdout,
      (await cli.ok(['workspace', 'logs', ws.id])).stdout,
    ];
    for (const out of outputs) for (const n of needles) assert.ok(!out.includes(n), `${n} in ${out.slice(0, 200)}`);

    // When a tool prints the key, the conversation's events show *** instead.
    model.enqueue({ tools: [{ name: 'Bash', input: { command: 'printenv ANTHROPIC_API_KEY' } }] }, { text: 'printed' });
    await cli.ok(['send', conv, 'print your key']);
    await until('the second turn to end', async () => ((await events()).match(/"type":"turn.completed"/g)?.length === 2 ? true : undefined));
    const log = (await cli.ok(['logs', conv, '--json'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
    const printed = log.filter((e) => e.type === 'tool.result').pop()?.data as { output: string };
    assert.match(printed.output, /\*\*\*/);
    assert.ok(!JSON.stringify(log).includes(canary));
    assert.deepEqual(filesContaining(cli.home, [canary]), []);
  } finally {
    await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});

/** Files under `dir` whose bytes contain any of `needles`. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) hits.push(...filesContaining(p, needles));
    else if (st.isFile()) {
      const bytes = readFileSync(p);
      if (needles.some((n) => bytes.includes(n))) hits.push(p);
    }
  }
  return hits;
}

/** The container's pids cgroup counters (its `max` line counts forks refused at the limit), cgroup v1 or v2. */
function pidsEvents(id: string): string | undefined {
  const candidates = [`/sys/fs/cgroup/pids/docker/${id}/pids.events`, `/sys/fs/cgroup/docker/${id}/pids.events`, `/sys/fs/cgroup/system.slice/docker-${id}.scope/pids.events`];
  return candidates.find((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}
