/**
 * The egress allowlist as a user meets it: real Claude Code in a workspace on Docker's default bridge, filtered by
 * default, reaches its model (a base URL the user set) and the npm registry, and nothing else.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { Cli, IMAGE, docker, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { until } from './support/wait.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

let model: ScriptedAnthropic;
before(async () => {
  // On all interfaces: the workspace reaches it at the bridge's gateway, an address its base URL allows.
  model = await ScriptedAnthropic.start({ host: '0.0.0.0' });
});
after(() => model.close());

test('unattended on the default bridge, the agent reaches its model and the npm registry, and nothing else', { timeout: 10 * 60_000 }, async () => {
  const cli = new Cli();
  const gateway = docker('network', 'inspect', 'bridge', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}').out;
  assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
  await cli.ok(['agent', 'set', 'claude', '--base-url', `http://${gateway}:${new URL(model.url).port}`, '--secret', 'ANTHROPIC_API_KEY=sk-ant-egress-test']);
  const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('filtered'), '--provider', 'docker', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo & { egress?: { mode: string } };
  try {
    assert.equal(ws.egress?.mode, 'allowlist', 'filtered by default');
    const probe = (url: string) => `node -e "fetch('${url}').then((r) => console.log('reached', r.status), (e) => console.log('blocked', e.cause?.code ?? e.message))"`;
    // Something this machine can reach but the allowlist does not name: its Debian mirror. The control: an
    // unfiltered container does reach it.
    const candidates = execSync("grep -rhoE 'https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null || true", { encoding: 'utf8' }).split('\n').filter(Boolean);
    const mirror = [...new Set([...candidates, 'http://deb.debian.org/debian'])].find((url) => /^reached /m.test(docker('run', '--rm', '--entrypoint', 'sh', IMAGE, '-c', probe(`${url}/`)).out));
    assert.ok(mirror, 'an unfiltered container reaches one of the Debian mirrors this machine uses');
    model.enqueue(
      { tools: [{ name: 'Bash', input: { command: 'npm view left-pad version' } }] },
      { tools: [{ name: 'Bash', input: { command: probe(`${mirror}/`) } }] },
      { text: 'checked' },
    );
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'check the network'])).stdout.trim();
    let events: AnyEvent[] = [];
    await until('the turn to complete', async () => {
      events = (await cli.run(['logs', conv, '--json'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
      return events.some((e) => e.type === 'turn.completed');
    }, { timeoutMs: 240_000, everyMs: 500 });
    const results = events.filter((e) => e.type === 'tool.result').map((e) => String((e.data as { output: unknown }).output));
    assert.equal(results.length, 2, JSON.stringify(results));
    assert.match(results[0]!, /^1\.3\.0\s*$/m, 'the package registry answered');
    assert.match(results[1]!, /^blocked /m, 'anything else is out of reach');
    assert.ok(model.turnRequests.length >= 3, 'the model was reached for every step');
  } finally {
    await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  }
});
