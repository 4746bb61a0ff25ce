/**
 * The control plane as a team would use it: users who cannot see each other's workspaces, a workspace tunnel cut
 * mid-turn and the server killed with -9 mid-turn, and a follower (`logs --follow`) that sees every event exactly
 * once through all of it. Run on SQLite and on PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, Cli, IMAGE, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { freePort, killHard, startServerProcess, tcpProxy, type ServerProcess } from './support/cp-process.js';
import { freshDatabase, testPostgresUrl } from './support/postgres.js';
import { until } from './support/wait.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

let model: ScriptedAnthropic;
before(async () => {
  model = await ScriptedAnthropic.start();
});
after(() => model.close());

const tail = (text: string, lines = 40) => text.split('\n').slice(-lines).join('\n');

for (const backend of ['sqlite', 'postgres'] as const) {
  test(`two users stay apart, and a follower sees every event once through a tunnel cut and a kill -9 of the server (${backend})`, { timeout: 10 * 60_000 }, async (t) => {
    const pgServer = backend === 'postgres' ? await testPostgresUrl() : undefined;
    if (backend === 'postgres' && !pgServer) return t.skip('CLAUDE_VM_SKIP_PG=1');
    const dbArgs = pgServer ? ['--db', await freshDatabase(pgServer)] : [];
    const home = mkdtempSync(join(tmpdir(), 'cvm-cp-'));
    const port = await freePort();
    let server: ServerProcess = await startServerProcess(home, { port, args: dbArgs });
    const proxy = await tcpProxy(port);
    const admin = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
    const alice = new Cli();
    const bob = new Cli();
    let follower: ReturnType<typeof spawn> | undefined;
    let followerErr = '';
    let container = '';
    const seen: AnyEvent[] = [];
    let convId = '';
    const explain = () => {
      const daemonLog = container ? spawnSync('docker', ['exec', container, 'tail', '-n', '40', '/workspace/.claude-vm/daemon.log'], { encoding: 'utf8' }).stdout : '';
      // Where the events stopped: in the workspace's own log, or on their way to the control plane.
      const inLog = container && convId ? spawnSync('docker', ['exec', container, 'sh', '-c', `cut -c1-160 /workspace/.claude-vm/conversations/${convId}/events.jsonl | tail -n 8`], { encoding: 'utf8' }).stdout : '';
      const stored = convId ? spawnSync(process.execPath, [BIN, 'logs', convId, '--json'], { encoding: 'utf8', env: { ...process.env, CLAUDE_VM_HOME: alice.home }, timeout: 20_000 }).stdout.split('\n').filter(Boolean).map((l) => `${(JSON.parse(l) as AnyEvent).seq}:${(JSON.parse(l) as AnyEvent).type}`).join(' ') : '';
      return [
        `follower: ${follower?.exitCode ?? 'running'}; stderr: ${followerErr.trim()}`,
        `seen: ${seen.map((e) => `${e.seq}:${e.type}`).join(' ')}`,
        `model requests: ${model.turnRequests.length}`,
        `server log:\n${tail(server.log())}`,
        `daemon log:\n${daemonLog}`,
        `the conversation's log in the workspace (last lines):\n${inLog}`,
        `stored by the control plane: ${stored}`,
      ].join('\n');
    };
    try {
      const aliceToken = (await admin.ok(['user', 'add', 'alice'])).stdout.trim();
      const bobToken = (await admin.ok(['user', 'add', 'bob'])).stdout.trim();
      assert.match(aliceToken, /^cvm_/);
      assert.match((await alice.ok(['login', server.url, '--token', aliceToken])).stdout, /as alice/);
      await bob.ok(['login', server.url, '--token', bobToken]);

      // Alice's workspace dials the control plane through the proxy, so the test can cut that link.
      await alice.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host', '--option', `control-plane-url=http://127.0.0.1:${proxy.port}`]);
      await alice.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', 'ANTHROPIC_API_KEY=sk-ant-cp-test']);
      const ws = JSON.parse((await alice.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'hostnet', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
      container = `claude-vm-${ws.id}`;

      let releaseBash!: () => void;
      model.enqueue(
        { tools: [{ name: 'Write', input: { file_path: `${ws.projectDir}/a.txt`, content: 'one\n' } }] },
        { tools: [{ name: 'Bash', input: { command: 'echo survived-$((6*7))' } }], hold: new Promise<void>((r) => (releaseBash = r)) },
        { text: 'all done' },
      );
      const requestsBefore = model.turnRequests.length;
      const conv = (await alice.ok(['new-chat', ws.id, '-m', 'write a.txt, then run a command'])).stdout.trim();
      convId = conv;

      follower = spawn(process.execPath, [BIN, 'logs', conv, '--follow', '--json'], { env: { ...process.env, CLAUDE_VM_HOME: alice.home }, stdio: ['ignore', 'pipe', 'pipe'] });
      follower.stderr!.on('data', (d: Buffer) => (followerErr += d));
      let partial = '';
      follower.stdout!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines.filter(Boolean)) seen.push(JSON.parse(l) as AnyEvent);
      });
      // Mid-turn: the Write is done and the model is holding its answer to the second request.
      await until('the held second model request', () => model.turnRequests.length >= requestsBefore + 2, { explain, timeoutMs: 120_000, everyMs: 200 });
      await until('the follower to see the Write', () => seen.some((e) => e.type === 'tool.result'), { explain, timeoutMs: 120_000, everyMs: 200 });

      // Bob sees none of it and can touch none of it.
      assert.deepEqual(await bob.json<unknown[]>(['workspace', 'list']), []);
      assert.deepEqual(await bob.json<unknown[]>(['conversations']), []);
      for (const args of [['workspace', 'show', ws.id], ['logs', conv], ['send', conv, 'hi'], ['interrupt', conv], ['exec', ws.id, '--', 'true'], ['workspace', 'down', ws.id], ['workspace', 'delete', ws.id, '-y']]) {
        const r = await bob.run(args);
        assert.equal(r.code, 1, `bob: ${args.join(' ')}`);
        assert.match(r.stderr, /^error: No (workspace|conversation) matches/, `bob: ${args.join(' ')}: ${r.stderr}`);
      }

      // Cut the tunnel's TCP connection, then kill the control plane outright, both mid-turn.
      assert.ok(proxy.cut() > 0, 'the tunnel went through the proxy');
      await killHard(server);
      server = await startServerProcess(home, { port, args: dbArgs });
      releaseBash();

      await until('the turn to complete', () => seen.some((e) => e.type === 'turn.completed'), { explain, timeoutMs: 120_000, everyMs: 200 });
      // The daemon's own log is the truth: the follower got exactly that, in order, once each.
      const raw = spawnSync('docker', ['exec', container, 'cat', `/workspace/.claude-vm/conversations/${conv}/events.jsonl`], { encoding: 'utf8' }).stdout;
      const truth = raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
      await until('the follower to catch up with the daemon log', () => seen.length >= truth.length, { explain, timeoutMs: 30_000, everyMs: 200 });
      assert.deepEqual(seen.map((e) => e.seq), truth.map((e) => e.seq), 'no gap, no duplicate');
      assert.deepEqual(seen.map((e) => e.type), truth.map((e) => e.type));
      const bash = seen.find((e) => e.type === 'tool.result' && JSON.stringify(e.data).includes('survived-42'));
      assert.ok(bash, 'the agent ran its command to the end, unaffected');
      assert.equal((await alice.ok(['exec', ws.id, '--', 'cat', 'a.txt'])).stdout, 'one\n');
      assert.deepEqual((await alice.ok(['logs', conv, '--json'])).stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AnyEvent).seq), truth.map((e) => e.seq));

      // The audit log recorded the lifecycle and the users, and no secret.
      const audit = (await admin.ok(['audit', '--json'])).stdout;
      for (const action of ['user.add', 'workspace.create', 'agent.secrets.set']) assert.ok((JSON.parse(audit) as Array<{ action: string }>).some((a) => a.action === action), `audit has ${action}`);
      assert.doesNotMatch(audit, /sk-ant-cp-test|cvm_[A-Za-z0-9_-]{20,}/);

      await alice.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
    } finally {
      follower?.kill();
      await proxy.close();
      await killHard(server);
      // A run that failed midway must not leave its workspace running on the engine (the success path deleted it).
      if (container) for (const args of [['rm', '-f', container], ['volume', 'rm', container]]) spawnSync('docker', args, { stdio: 'ignore' });
    }
  });
}
