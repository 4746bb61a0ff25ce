/**
 * Policies (seed 000): per-user limits on running workspaces and launches, idle auto-stop and auto-delete. The
 * team-mode case runs two control-plane processes on one PostgreSQL database: each action happens exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cli } from './support/cli.js';
import { freePort, killHard, startServerProcess, type ServerProcess } from './support/cp-process.js';
import { freshDatabase, testPostgresUrl } from './support/postgres.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 60_000) => {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

test('limits: a user may run only so many workspaces, and launch only so many per hour; a refused launch creates nothing', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-pol-'));
  const server = await startServerProcess(home, { port: await freePort(), args: ['--max-running', '1', '--launches-per-hour', '2'] });
  const admin = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  try {
    const token = (await admin.ok(['user', 'add', 'carol'])).stdout.trim();
    const carol = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: token });
    const first = JSON.parse((await carol.ok(['workspace', 'up', '--provider', 'local', '--json'])).stdout) as WorkspaceInfo;
    const second = await carol.run(['workspace', 'up', '--provider', 'local']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /^error: You have 1 running workspaces, the most allowed\.\nhint: Stop one/);
    assert.equal((await carol.json<WorkspaceInfo[]>(['workspace', 'list'])).length, 1, 'the refused launch left nothing');
    // Another user has their own allowance.
    assert.equal((await admin.run(['workspace', 'up', '--provider', 'local'])).code, 0);

    await carol.ok(['workspace', 'down', first.id]);
    await carol.ok(['workspace', 'up', first.id]); // launch 2 of 2 this hour
    await carol.ok(['workspace', 'down', first.id]);
    const third = await carol.run(['workspace', 'up', first.id]);
    assert.equal(third.code, 1);
    assert.match(third.stderr, /^error: You launched 2 workspaces in the last hour, the most allowed\./);
    assert.equal((await carol.json<WorkspaceInfo>(['workspace', 'show', first.id])).status, 'stopped');
  } finally {
    await killHard(server);
  }
});

test('team mode: two control planes on one PostgreSQL database stop an idle workspace once, then delete it once', async (t) => {
  const pgServer = await testPostgresUrl();
  if (!pgServer) return t.skip('CLAUDE_VM_SKIP_PG=1');
  const db = await freshDatabase(pgServer);
  const keyFile = join(mkdtempSync(join(tmpdir(), 'cvm-key-')), 'secret.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const args = ['--db', db, '--secret-key-file', keyFile, '--policy-interval', '1s', '--auto-delete-after', '3s'];
  const servers: ServerProcess[] = [];
  try {
    servers.push(await startServerProcess(mkdtempSync(join(tmpdir(), 'cvm-a-')), { port: await freePort(), args }));
    servers.push(await startServerProcess(mkdtempSync(join(tmpdir(), 'cvm-b-')), { port: await freePort(), args }));
    const [one, two] = servers as [ServerProcess, ServerProcess];
    const admin = new Cli({ CLAUDE_VM_URL: one.url, CLAUDE_VM_TOKEN: one.adminToken });
    const token = (await admin.ok(['user', 'add', 'dave'])).stdout.trim();
    const viaOne = new Cli({ CLAUDE_VM_URL: one.url, CLAUDE_VM_TOKEN: token });
    const viaTwo = new Cli({ CLAUDE_VM_URL: two.url, CLAUDE_VM_TOKEN: token });
    // A secret set through one process is usable through the other: they share the key, kept outside the database.
    await viaOne.ok(['agent', 'set', 'claude', '--secret', 'ANTHROPIC_API_KEY=sk-shared']);
    assert.deepEqual(Object.keys((await viaTwo.json<Array<{ secrets: Record<string, string> }>>(['agent', 'list']))[0]!.secrets), ['ANTHROPIC_API_KEY']);

    // The workspace's tunnel is held by the process that connected it; calls through the other one are forwarded.
    const held = JSON.parse((await viaOne.ok(['workspace', 'up', '--provider', 'local', '--auto-stop', '0', '--json'])).stdout) as WorkspaceInfo;
    const conv = (await viaTwo.ok(['new-chat', held.id])).stdout.trim();
    assert.match(conv, /^c_/);
    assert.deepEqual((await viaOne.json<Array<{ id: string }>>(['conversations', '-w', held.id])).map((c) => c.id), [conv]);
    assert.match((await viaTwo.ok(['interrupt', conv])).stdout, /nothing to interrupt|Interrupted/i);
    await viaTwo.ok(['workspace', 'delete', held.id, '--purge', '-y']);

    const ws = JSON.parse((await viaOne.ok(['workspace', 'up', '--provider', 'local', '--auto-stop', '2s', '--json'])).stdout) as WorkspaceInfo;
    assert.equal(ws.autoStopSeconds, 2);
    await until('the idle workspace to be stopped', async () => (await viaTwo.json<WorkspaceInfo>(['workspace', 'show', ws.id])).status === 'stopped');
    await until('the stopped workspace to be deleted', async () => (await viaTwo.json<WorkspaceInfo[]>(['workspace', 'list', '--status', 'deleted'])).some((w) => w.id === ws.id));
    // Both processes evaluated the policies every second; each action was still taken exactly once.
    await new Promise((r) => setTimeout(r, 2500));
    const audit = await admin.json<Array<{ action: string; target: string; detail: { by?: string } }>>(['audit', '-n', '1000']);
    const mine = audit.filter((a) => a.target === ws.id);
    assert.equal(mine.filter((a) => a.action === 'policy.idle-stop').length, 1, JSON.stringify(mine));
    assert.equal(mine.filter((a) => a.action === 'policy.auto-delete').length, 1, JSON.stringify(mine));
    assert.equal(mine.filter((a) => a.action.endsWith('.failed')).length, 0, JSON.stringify(mine));
    // Cost accounting: the run's seconds were counted when it stopped.
    const after = await viaOne.json<WorkspaceInfo>(['workspace', 'show', ws.id]);
    assert.ok(after.uptimeSeconds >= 2, `uptime ${after.uptimeSeconds}`);
    assert.equal(after.costUsd, 0, 'the local provider costs nothing');
  } catch (e) {
    // What the control planes said is the first thing to read when a policy did not happen.
    for (const s of servers) t.diagnostic(`server ${s.url}:\n${s.log().slice(-3000)}`);
    throw e;
  } finally {
    for (const s of servers) await killHard(s);
  }
});
