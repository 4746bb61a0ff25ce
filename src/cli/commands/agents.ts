/** @module `claude-vm agent set|list`: which model endpoint and credentials each coding agent uses. */
import type { Command } from 'commander';
import { AGENTS } from '../../protocol/events.js';
import type { Context } from '../context.js';
import { collectKeyValue } from '../options.js';
import { printJson, table } from '../render.js';
import { progressReporter } from '../progress.js';

export function agentCommands(program: Command, ctx: Context): void {
  const agent = program.command('agent').description('Configure coding agents (claude, codex, gemini, qwen, opencode)');

  agent
    .command('set <agent>')
    .description('Set base URL, model and secrets for an agent (all workspaces, or one with --workspace)')
    .option('--base-url <url>', "the agent's API endpoint (mapped to ANTHROPIC_BASE_URL, OPENAI_BASE_URL, …); empty to unset")
    .option('--model <model>', 'default model for new conversations; empty to unset')
    .option('--secret <NAME=VALUE>', 'a credential such as ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (repeatable; empty value removes)', collectKeyValue, {})
    .option('-w, --workspace <id>', 'only for this workspace')
    .addHelpText('after', `\nAgents: ${AGENTS.join(', ')}\nSecrets are stored encrypted and only reach the agent process when it starts.\n\nExample:\n  claude-vm agent set claude --secret ANTHROPIC_API_KEY=sk-ant-…`)
    .action(async (name: string, o: { baseUrl?: string; model?: string; secret: Record<string, string>; workspace?: string }) => {
      const workspaceId = o.workspace ? (await ctx.client().workspaces.get(o.workspace)).id : undefined;
      const s = await ctx.client().agents.set({ agent: name, workspaceId, baseUrl: o.baseUrl, model: o.model, secrets: o.secret });
      process.stdout.write(`Updated ${s.agent}${s.workspaceId ? ` for workspace ${s.workspaceId}` : ''}.\n`);
    });

  agent
    .command('install <agent>')
    .description("Install an agent's CLI into a running workspace whose image lacks it (kept on the volume)")
    .requiredOption('-w, --workspace <id>', 'the workspace')
    .option('--ca-bundle <file>', 'PEM bundle the workspace must trust to reach npm (default: $NODE_EXTRA_CA_CERTS; "" for none)')
    .action(async (name: string, o: { workspace: string; caBundle?: string }) => {
      const progress = progressReporter();
      const caBundle = o.caBundle ?? process.env.NODE_EXTRA_CA_CERTS;
      try {
        const r = await ctx.client().agents.install({ workspace: o.workspace, agent: name, caBundle: caBundle || undefined }, progress.fn);
        process.stdout.write(`Installed ${r.agent} ${r.version} in ${o.workspace}.\n`);
      } finally {
        progress.done();
      }
    });

  agent
    .command('list')
    .alias('ls')
    .description('Show agent settings (secrets hidden)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const list = await ctx.client().agents.list();
      if (o.json) return printJson(list);
      if (!list.length) return void process.stdout.write('No agent settings yet. Example: claude-vm agent set claude --secret ANTHROPIC_API_KEY=…\n');
      process.stdout.write(table(['AGENT', 'WORKSPACE', 'BASE URL', 'MODEL', 'SECRETS'], list.map((s) => [
        s.agent, s.workspaceId ?? '(all)', s.baseUrl ?? '-', s.model ?? '-', Object.keys(s.secrets).join(',') || '-',
      ])));
    });
}
