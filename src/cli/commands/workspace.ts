/** @module `claude-vm workspace …`: up, list, show, down, delete, snapshots, export and import, logs. */
import { Option, type Command } from 'commander';
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { WORKSPACE_STATUSES, type ProgressFn, type WorkspaceInfo, type WorkspaceStatus } from '../../protocol/types.js';
import { UserError } from '../../protocol/errors.js';
import type { Context } from '../context.js';
import { confirm, parseDuration } from '../options.js';
import { progressReporter } from '../progress.js';
import { ago, duration, printJson, table } from '../render.js';
import { rulesCommand } from './rules.js';

export function workspaceCommands(program: Command, ctx: Context): void {
  const ws = program.command('workspace').alias('ws').description('Create, list, stop, resume and delete workspaces');

  ws.command('up [target]')
    .description('Create a workspace from a local path or git URL, or resume one by id')
    .option('--provider <name>', 'where to run it (default: docker if an engine answers, else local); for an existing workspace, moves it there')
    .option('--image <image>', 'container image (default: claude-vm/workspace:latest)')
    .option('--branch <branch>', 'git branch to check out (created if missing)')
    .option('--name <name>', 'a name to use instead of the id')
    .option('--size <size>', "CPU and memory (docker: small, medium, large; see `provider add --help`)")
    .option('--auto-stop <duration>', 'stop after this long idle (no turn running, nobody attached), e.g. 30m; 0 never')
    .option('--allow-domain <name>', 'also let the workspace reach this name (*.example.com: its subdomains), IP or CIDR (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .option('--json', 'print the workspace as JSON')
    .addHelpText('after', `
Examples:
  claude-vm workspace up .                              copy this directory into a new workspace
  claude-vm workspace up https://github.com/o/r.git     clone a repository inside a new workspace
  claude-vm workspace up bold-fire-1234                 resume a stopped workspace (restored from its
                                                        snapshot if its volume is gone)
  claude-vm workspace up bold-fire-1234 --provider fly  move it to another provider, through its snapshot
  claude-vm workspace up . --allow-domain api.example.com
                                                        let it reach one more host (docker workspaces reach
                                                        only model APIs, package registries and the git host)`)
    .action(async (target: string | undefined, o: { provider?: string; image?: string; branch?: string; name?: string; size?: string; autoStop?: string; allowDomain?: string[]; json?: boolean }) => {
      const autoStopSeconds = o.autoStop === undefined ? undefined : parseDuration(o.autoStop, '--auto-stop');
      const progress = progressReporter();
      let result;
      try {
        result = await ctx.client().workspaces.up({ target, provider: o.provider, image: o.image, branch: o.branch, name: o.name, size: o.size, autoStopSeconds, allowDomains: o.allowDomain }, progress.fn);
      } finally {
        progress.done();
      }
      for (const n of result.notices) process.stderr.write(`note: ${n}\n`);
      if (o.json) return printJson(result.workspace);
      const w = result.workspace;
      const verb = { created: 'Created', started: 'Started', 'already-running': 'Already running:' }[result.action];
      process.stdout.write(`${verb} workspace ${w.id}${w.name ? ` (${w.name})` : ''} on ${w.provider}.\n`);
      process.stdout.write(`  project: ${w.projectDir}\n  shell:   claude-vm ssh ${w.name ?? w.id}\n  run:     claude-vm exec ${w.name ?? w.id} -- <command>\n`);
    });

  ws.command('list')
    .alias('ls')
    .description('List workspaces (deleted ones only with --status deleted)')
    .option('-l, --long', 'show image, branch, project directory and source')
    .addOption(new Option('--status <status>', 'only workspaces in this state').choices([...WORKSPACE_STATUSES]))
    .option('--json', 'print JSON')
    .action(async (o: { long?: boolean; status?: WorkspaceStatus; json?: boolean }) => {
      const list = await ctx.client().workspaces.list({ status: o.status });
      if (o.json) return printJson(list);
      if (!list.length) return void process.stdout.write(o.status ? `No ${o.status} workspaces.\n` : 'No workspaces. Create one with `claude-vm workspace up <path|git-url>`.\n');
      process.stdout.write(table(...listTable(list, !!o.long)));
      for (const w of list.filter((w) => w.status === 'error' && w.statusReason)) process.stdout.write(`${w.id}: ${w.statusReason}\n`);
    });

  ws.command('show <id>')
    .description('Show one workspace')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const w = await ctx.client().workspaces.get(id);
      if (o.json) return printJson(w);
      const rows: [string, string][] = [
        ['id', w.id], ['name', w.name ?? '-'], ['status', w.status + (w.statusReason ? ` (${w.statusReason})` : '')],
        ['provider', `${w.provider} (${w.providerType})`], ['image', w.image], ['project', `${w.project.name} from ${w.project.source || '(empty)'}`],
        ['directory', w.projectDir], ['branch', w.branch ?? '-'], ['size', w.size], ['created', w.createdAt], ['uptime', ago(w.startedAt)],
        ['total up', duration(w.uptimeSeconds)], ['cost', `$${w.costUsd.toFixed(4)}`],
        ['auto-stop', w.autoStopSeconds ? `after ${duration(w.autoStopSeconds)} idle` : 'never'], ['activity', w.lastActivityAt ? `${ago(w.lastActivityAt)} ago` : '-'],
        ...(w.egress ? [['egress', w.egress.mode === 'allowlist' ? `allowlist: ${w.egress.allow.join(' ')}` : w.egress.mode] as [string, string]] : []),
      ];
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n') + '\n');
    });

  ws.command('down <id>')
    .alias('stop')
    .description('Snapshot a workspace, then stop it; its files stay and `up <id>` resumes it')
    .option('-f, --force', 'kill at once instead of a graceful stop, and take no snapshot')
    .action(async (id: string, o: { force?: boolean }) => {
      const w = await withProgress((p) => ctx.client().workspaces.down(id, { force: o.force }, p));
      process.stdout.write(`Stopped workspace ${w.id}.\n`);
    });

  ws.command('delete <id>')
    .alias('rm')
    .description('Delete a workspace (snapshotting it first); its data and snapshots are kept unless --purge')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--purge', 'also delete the data (volume or directory), its snapshots and the record')
    .action(async (id: string, o: { yes?: boolean; purge?: boolean }) => {
      const w = await ctx.client().workspaces.get(id);
      await confirm(o.purge ? `Delete workspace ${w.id} and ALL its files?` : `Delete workspace ${w.id} (its files are kept)?`, o.yes);
      const r = await withProgress((p) => ctx.client().workspaces.delete(w.id, { purge: o.purge }, p));
      process.stdout.write(
        r.purged ? `Deleted workspace ${r.id} and its data.\n` : `Deleted workspace ${r.id}; its data is kept. \`claude-vm workspace up ${r.id}\` brings it back, \`--purge\` removes it.\n`,
      );
    });

  ws.command('snapshot <id>')
    .description('Snapshot a running workspace now: files, git metadata, agent sessions (only changes are stored)')
    .option('--include-caches', 'also package caches, installed agents and editor servers')
    .option('--json', 'print the snapshot as JSON')
    .action(async (id: string, o: { includeCaches?: boolean; json?: boolean }) => {
      const s = await withProgress((p) => ctx.client().snapshots.take(id, { includeCaches: o.includeCaches }, p));
      if (o.json) return printJson(s);
      process.stdout.write(`Snapshot ${s.id} of ${s.workspaceId}: ${s.files} files, ${mb(s.bytes)}; ${mb(s.storedBytes)} stored (${mb(s.newBytes)} changed) in ${(s.durationMs / 1000).toFixed(1)}s.\n`);
      if (s.skipped.length) process.stderr.write(`note: ${s.skipped.length} path(s) could not be read and were left out: ${s.skipped.join(', ')}\n`);
    });

  ws.command('snapshots <id>')
    .description("List a workspace's snapshots, oldest first")
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const list = await ctx.client().snapshots.list(id);
      if (o.json) return printJson(list);
      if (!list.length) return void process.stdout.write(`No snapshots yet. Take one with \`claude-vm workspace snapshot ${id}\`.\n`);
      process.stdout.write(table(['ID', 'TAKEN', 'REASON', 'FILES', 'SIZE', 'STORED'], list.map((s) => [s.id, ago(s.createdAt) + ' ago', s.reason, String(s.files), mb(s.bytes), mb(s.storedBytes)])));
    });

  rulesCommand(ws, ctx);

  ws.command('export <id>')
    .description('Write the latest snapshot to a tar file (a running workspace is snapshotted first)')
    .requiredOption('-o, --output <file>', 'the tar file to write')
    .action(async (id: string, o: { output: string }) => {
      if (existsSync(o.output)) throw new UserError('already_exists', `${o.output} already exists.`, 'Pick another --output, or remove it first.');
      const tmp = `${o.output}.partial`;
      try {
        await ctx.client().snapshots.export(id, createWriteStream(tmp, { mode: 0o600 }));
        renameSync(tmp, o.output);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
      process.stdout.write(`Exported ${id} to ${o.output} (${mb(statSync(o.output).size)}). Bring it back with \`claude-vm workspace import ${o.output}\`.\n`);
    });

  ws.command('import <file>')
    .description('Create a workspace from a tar written by `workspace export`')
    .option('--provider <name>', 'where to run it')
    .option('--name <name>', 'a name for the new workspace')
    .option('--size <size>', 'CPU and memory')
    .option('--json', 'print the workspace as JSON')
    .action(async (file: string, o: { provider?: string; name?: string; size?: string; json?: boolean }) => {
      if (!existsSync(file)) throw new UserError('not_found', `No file ${file}.`);
      const r = await withProgress((p) => ctx.client().snapshots.import(createReadStream(file), { provider: o.provider, name: o.name, size: o.size }, p));
      for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
      if (o.json) return printJson(r.workspace);
      process.stdout.write(`Imported ${file} as workspace ${r.workspace.id} on ${r.workspace.provider}.\n  project: ${r.workspace.projectDir}\n`);
    });

  ws.command('logs <id>')
    .description("Show the workspace's own output (entrypoint and daemon)")
    .option('-f, --follow', 'keep printing new output')
    .option('--tail <n>', 'only the last n lines', (v) => parseInt(v, 10))
    .action(async (id: string, o: { follow?: boolean; tail?: number }) => {
      await ctx.client().workspaces.logs(id, { follow: o.follow, tail: o.tail, stdout: process.stdout });
    });
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** Runs a long operation with its progress on stderr. */
async function withProgress<T>(work: (progress: ProgressFn) => Promise<T>): Promise<T> {
  const progress = progressReporter();
  try {
    return await work(progress.fn);
  } finally {
    progress.done();
  }
}

function listTable(list: WorkspaceInfo[], long: boolean): [string[], string[][]] {
  const headers = ['ID', 'NAME', 'PROJECT', 'PROVIDER', 'STATUS', 'UPTIME', 'CREATED', ...(long ? ['SIZE', 'COST', 'AUTO-STOP', 'BRANCH', 'IMAGE', 'DIRECTORY', 'SOURCE'] : [])];
  const rows = list.map((w) => [
    w.id, w.name ?? '-', w.project.name, w.provider, w.status, ago(w.startedAt), ago(w.createdAt) + ' ago',
    ...(long
      ? [w.size, `$${w.costUsd.toFixed(4)}`, w.autoStopSeconds ? duration(w.autoStopSeconds) : '-', w.branch ?? '-', w.image, w.projectDir, w.project.source || '(empty)']
      : []),
  ]);
  return [headers, rows];
}
