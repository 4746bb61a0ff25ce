/** Agent settings: per-agent and per-workspace, secrets sealed at rest and hidden, bad input refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Cli } from './support/cli.js';
import type { AgentSettings } from '../src/core/agents.js';

test('agent set stores base URL, model and secrets; list hides secrets; the state file never holds them in clear', async () => {
  const cli = new Cli();
  await cli.ok(['agent', 'set', 'claude', '--base-url', 'https://gw.example/anthropic', '--secret', 'ANTHROPIC_API_KEY=sk-ant-SECRET-1', '--model', 'claude-sonnet']);
  await cli.ok(['agent', 'set', 'codex', '--secret', 'OPENAI_API_KEY=sk-openai-SECRET-2']);
  const list = await cli.json<AgentSettings[]>(['agent', 'list']);
  assert.deepEqual(list.map((s) => [s.agent, s.baseUrl, s.model, Object.keys(s.secrets)]), [
    ['claude', 'https://gw.example/anthropic', 'claude-sonnet', ['ANTHROPIC_API_KEY']],
    ['codex', null, null, ['OPENAI_API_KEY']],
  ]);
  const shown = (await cli.ok(['agent', 'list'])).stdout + JSON.stringify(list);
  assert.doesNotMatch(shown, /SECRET-\d/);
  for (const f of readdirSync(cli.home, { withFileTypes: true }).filter((d) => d.isFile())) {
    assert.doesNotMatch(readFileSync(join(cli.home, f.name), 'latin1'), /SECRET-\d/, `${f.name} holds a secret in clear`);
  }

  // Changing one field keeps the others; an empty value removes.
  await cli.ok(['agent', 'set', 'claude', '--model', '']);
  await cli.ok(['agent', 'set', 'claude', '--secret', 'ANTHROPIC_API_KEY=']);
  const after = (await cli.json<AgentSettings[]>(['agent', 'list'])).find((s) => s.agent === 'claude')!;
  assert.deepEqual([after.baseUrl, after.model, after.secrets], ['https://gw.example/anthropic', null, {}]);
});

test('bad agent settings are refused with one line', async () => {
  const cli = new Cli();
  const cases: [string[], RegExp][] = [
    [['agent', 'set', 'gpt'], /Unknown agent "gpt"/],
    [['agent', 'set', 'claude', '--base-url', 'ftp://x'], /is not an http\(s\) URL/],
    [['agent', 'set', 'claude', '--secret', 'lower=1'], /is not an environment variable name/],
    [['agent', 'set', 'claude', '--workspace', 'nope'], /No workspace matches "nope"/],
    [['new-chat', 'nope'], /No workspace matches "nope"/],
    [['send', 'c_nothing', 'hi'], /No conversation matches "c_nothing"/],
  ];
  for (const [args, re] of cases) {
    const r = await cli.run(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re);
  }
});
