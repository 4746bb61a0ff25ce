/** @module `claude-vm workspace rules <id>`: show or replace a workspace's approval rules, from outside the workspace. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { UserError } from '../../protocol/errors.js';
import type { WorkspaceRules } from '../../core/gate-rules.js';
import type { Context } from '../context.js';
import { printJson, table } from '../render.js';

export function rulesCommand(ws: Command, ctx: Context): void {
  ws.command('rules <id>')
    .description("Show a workspace's approval rules, or replace them (the agent inside cannot change them)")
    .option('--set <file>', 'replace them with this rules file (- for standard input); see docs/security.md for the format')
    .option('--clear', 'go back to the built-in rules only')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { set?: string; clear?: boolean; json?: boolean }) => {
      if (o.set !== undefined && o.clear) throw new UserError('invalid_argument', 'Pass either --set or --clear, not both.');
      const client = ctx.client();
      const r = o.set !== undefined ? await client.workspaces.setRules(id, readRulesFile(o.set)) : o.clear ? await client.workspaces.setRules(id, null) : await client.workspaces.rules(id);
      if (o.json) return printJson(r);
      process.stdout.write(render(r));
    });
}

function readRulesFile(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UserError('not_found', `Cannot read the rules file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
  }
}

function render(r: WorkspaceRules): string {
  if (!r.rules.length) return `${r.workspaceId}: only the built-in rules apply (sudo and reading credentials are blocked; force pushes, hard resets, publishing and download-to-shell ask).\n`;
  return `${r.workspaceId}: your rules come first, then the built-in ones.\n` + table(['LINE', 'ACTION', 'PATTERN', 'REASON'], r.rules.map((x) => [String(x.line), x.action, x.pattern, x.reason]));
}
