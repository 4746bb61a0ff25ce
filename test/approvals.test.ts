/**
 * The approval gate with the real Claude Code CLI in a Docker workspace, in skip-permissions mode: a force push
 * waits for the user (`claude-vm approvals`, `approve`), a hard reset is denied and the agent is told, `sudo` is
 * refused without asking, and the agent cannot approve its own request through the daemon's local socket.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cli, IMAGE, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { until } from './support/wait.js';
import type { ApprovalInfo } from '../src/client/client.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

let model: ScriptedAnthropic;
before(async () => {
  model = await ScriptedAnthropic.start();
});
after(() => model.close());

const events = async (cli: Cli, conv: string) => (await cli.ok(['logs', conv, '--json'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);

/** The result Claude Code got back for the tool call that ran `command`. */
async function resultOf(cli: Cli, conv: string, command: string): Promise<{ output: string; isError: boolean }> {
  return until(`the result of ${command}`, async () => {
    const es = await events(cli, conv);
    const call = es.find((e) => e.type === 'tool.called' && (e.data as { input: { command?: string } }).input.command === command);
    const id = (call?.data as { toolUseId?: string } | undefined)?.toolUseId;
    const r = es.find((e) => e.type === 'tool.result' && (e.data as { toolUseId: string }).toolUseId === id);
    return r ? (r.data as { output: string; isError: boolean }) : undefined;
  });
}

test('a risky command waits for approval; approve runs it, deny tells the agent; sudo is refused outright', { timeout: 6 * 60_000 }, async () => {
  const cli = new Cli();
  await cli.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host']);
  await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', 'ANTHROPIC_API_KEY=sk-ant-gate-test']);
  const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'hostnet', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
  try {
    const push = 'git push --force origin main';
    const reset = 'git reset --hard HEAD';
    const sudo = 'sudo id';
    model.enqueue(
      { tools: [{ name: 'Bash', input: { command: push } }] },
      { tools: [{ name: 'Bash', input: { command: sudo } }] },
      { tools: [{ name: 'Bash', input: { command: reset } }] },
      { text: 'done' },
    );
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'push, then clean up'])).stdout.trim();

    // 1. The force push waits: visible from the CLI, with its rule, and the conversation says so.
    const first = await until('an approval request', async () => (await cli.json<ApprovalInfo[]>(['approvals']))[0]);
    assert.equal(first.tool, 'Bash');
    assert.equal((first.input as { command?: string }).command, push);
    assert.match(first.reason ?? '', /force push/);
    assert.ok(first.expiresAt && Date.parse(first.expiresAt) > Date.now());
    const listing = (await cli.ok(['approvals'])).stdout;
    assert.match(listing, new RegExp(first.approvalId));
    assert.match(listing, /git push --force origin main/);
    const state = (await cli.json<Array<{ id: string; state: string }>>(['conversations'])).find((c) => c.id === conv)?.state;
    assert.equal(state, 'waiting-approval');

    // The agent (same user, same machine) cannot approve its own request through the daemon's local socket.
    const self = await cli.run(['exec', ws.id, '--', 'sh', '-c', `echo '{"id":"${conv}","approvalId":"${first.approvalId}","decision":"allow"}' | node /workspace/.claude-vm/daemon/src/daemon/main.js call approval.decide`]);
    assert.match(self.stdout, /only accepted from the control plane/);
    assert.equal((await cli.json<ApprovalInfo[]>(['approvals'])).length, 1, 'still waiting');

    // 2. Approve: the command runs (and fails on its own terms: this repository has no remote).
    assert.match((await cli.ok(['approve', first.approvalId])).stdout, /Approved/);
    const pushed = await resultOf(cli, conv, push);
    assert.match(pushed.output, /origin|remote|repository/i);
    assert.doesNotMatch(pushed.output, /did not approve|Blocked/);

    // 3. sudo is refused without asking anyone.
    const refused = await resultOf(cli, conv, sudo);
    assert.equal(refused.isError, true);
    assert.match(refused.output, /Blocked by the workspace's rules: privilege escalation/);

    // 4. Deny: the agent is told, and the command did not run.
    const second = await until('the second approval request', async () => (await cli.json<ApprovalInfo[]>(['approvals'])).find((a) => a.approvalId !== first.approvalId));
    await cli.ok(['deny', second.approvalId]);
    const denied = await resultOf(cli, conv, reset);
    assert.equal(denied.isError, true);
    assert.match(denied.output, /did not approve/);
    await until('the turn to end', async () => ((await events(cli, conv)).some((e) => e.type === 'turn.completed') ? true : undefined));
    const decided = (await events(cli, conv)).filter((e) => e.type === 'approval.decided').map((e) => (e.data as { decision: string }).decision);
    assert.deepEqual(decided, ['allow', 'deny']);
    assert.deepEqual(await cli.json<ApprovalInfo[]>(['approvals']), []);
    const again = await cli.run(['approve', second.approvalId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: .*not waiting any more/m);
  } finally {
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});
