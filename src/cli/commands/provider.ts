/** @module `claude-vm provider …`: add, list, set-options, delete. */
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { PROVIDER_TYPES } from '../../providers/registry.js';
import { collectKeyValue, confirm } from '../options.js';
import { printJson, table } from '../render.js';

export function providerCommands(program: Command, ctx: Context): void {
  const provider = program.command('provider').description('Manage where workspaces run (docker, local, …)');

  provider
    .command('add <name>')
    .description('Add a provider; its type defaults to its name')
    .option('--type <type>', 'provider type, when the name is your own (e.g. two Docker hosts)')
    .option('--option <key=value>', 'set a provider option (repeatable)', collectKeyValue, {})
    .addHelpText('after', () => '\nProvider types:\n' + Object.values(PROVIDER_TYPES).map((t) => `  ${t.type.padEnd(8)} ${t.description}\n    sizes: ${Object.keys(t.sizes).join(', ')} (default ${t.defaultSize})` + t.options.map((o) => `\n    --option ${o.name}=…  ${o.description}${o.required ? " (required)" : o.default ? ` (default: ${o.default})` : ''}`).join('')).join('\n'))
    .action(async (name: string, o: { type?: string; option: Record<string, string> }) => {
      const p = await ctx.client().providers.add({ name, type: o.type, options: o.option });
      process.stdout.write(`Added provider ${p.name} (${p.type}).\n`);
    });

  provider
    .command('list')
    .alias('ls')
    .description('List configured providers')
    .option('-v, --verbose', 'show options (secrets hidden)')
    .option('--json', 'print JSON')
    .action(async (o: { verbose?: boolean; json?: boolean }) => {
      const list = await ctx.client().providers.list();
      if (o.json) return printJson(list);
      if (!list.length) return void process.stdout.write('No providers yet. `claude-vm workspace up` adds docker (or local) on first use.\n');
      const headers = ['NAME', 'TYPE', 'ISOLATES', ...(o.verbose ? ['OPTIONS'] : [])];
      const rows = list.map((p) => [p.name, p.type, p.isolates ? 'yes' : 'no', ...(o.verbose ? [Object.entries(p.options).map(([k, v]) => `${k}=${v}`).join(' ') || '-'] : [])]);
      process.stdout.write(table(headers, rows));
    });

  provider
    .command('set-options <name>')
    .description('Change provider options (an empty value removes one)')
    .option('--option <key=value>', 'option to set (repeatable)', collectKeyValue, {})
    .action(async (name: string, o: { option: Record<string, string> }) => {
      const p = await ctx.client().providers.setOptions(name, o.option);
      process.stdout.write(`Updated provider ${p.name}.\n`);
    });

  provider
    .command('delete <name>')
    .alias('rm')
    .description('Remove a provider that has no workspaces')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, o: { yes?: boolean }) => {
      await confirm(`Delete provider ${name}?`, o.yes);
      await ctx.client().providers.delete(name);
      process.stdout.write(`Deleted provider ${name}.\n`);
    });
}
