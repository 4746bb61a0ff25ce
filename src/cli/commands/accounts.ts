/** @module Accounts: login/logout to a control plane, users (admins), API tokens, the audit log, approvals. */
import { rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { UserError } from '../../protocol/errors.js';
import { httpClient } from '../../client/http.js';
import { loginFile, saveLogin } from '../../client/connect.js';
import type { Context } from '../context.js';
import { runsOffline } from '../offline.js';
import { confirm, parseCount } from '../options.js';
import { ago, printJson, table } from '../render.js';

export function accountCommands(program: Command, ctx: Context): void {
  runsOffline(program.command('login <url>'))
    .description('Use a remote control plane from now on (the token is checked, then saved with mode 0600)')
    .option('--token <token>', 'API token (default: $CLAUDE_VM_TOKEN, or read from stdin)')
    .action(async (url: string, o: { token?: string }) => {
      if (!/^https?:\/\/[^\s/]+/.test(url)) throw new UserError('invalid_argument', `"${url}" is not an http(s) URL.`, 'Example: claude-vm login https://cvm.example.com');
      const token = o.token ?? process.env.CLAUDE_VM_TOKEN ?? (await readSecret('Token: '));
      if (!token) throw new UserError('invalid_argument', 'No token given.', 'Pass --token, or ask an admin for one (`claude-vm user add`).');
      const me = await httpClient({ url, token }).me();
      saveLogin(ctx.home, { url: url.replace(/\/$/, ''), token });
      process.stdout.write(`Logged in to ${url} as ${me.user.name}${me.user.admin ? ' (admin)' : ''}.\n`);
    });

  runsOffline(program.command('logout'))
    .description('Forget the saved remote control plane; commands use the local server again')
    .action(() => {
      rmSync(loginFile(ctx.home), { force: true });
      process.stdout.write('Logged out; using the local control plane.\n');
    });

  program
    .command('web')
    .description('Open the web UI (a one-time login link, valid 10 minutes)')
    .option('--no-open', 'only print the link')
    .action(async (o: { open: boolean }) => {
      const link = await ctx.client().loginLink();
      process.stdout.write(`${link.url}\n`);
      process.stderr.write('This link logs you in once, within 10 minutes; keep it to yourself.\n');
      const opener = process.platform === 'darwin' ? 'open' : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : undefined;
      if (o.open && opener) spawn(opener, [link.url], { stdio: 'ignore', detached: true }).on('error', () => undefined).unref();
    });

  program
    .command('whoami')
    .description('Show the user and control plane this CLI uses')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const me = await ctx.client().me();
      if (o.json) return printJson({ ...me, url: ctx.client().url });
      process.stdout.write(`${me.user.name}${me.user.admin ? ' (admin)' : ''} on ${ctx.client().url}\n`);
    });

  const user = program.command('user').description('Manage users (admins only)');
  user
    .command('add <name>')
    .description('Add a user and print their first API token (shown once)')
    .option('--admin', 'make them an admin')
    .action(async (name: string, o: { admin?: boolean }) => {
      const r = await ctx.client().users.add(name, !!o.admin);
      process.stderr.write(`Added user ${r.user.name}${r.user.admin ? ' (admin)' : ''}. Their API token (shown only now):\n`);
      process.stdout.write(`${r.secret}\n`);
      process.stderr.write(`They log in with: claude-vm login ${ctx.client().url} --token <token>\n`);
    });
  user
    .command('list')
    .alias('ls')
    .description('List users')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const list = await ctx.client().users.list();
      if (o.json) return printJson(list);
      process.stdout.write(table(['ID', 'NAME', 'ADMIN', 'CREATED'], list.map((u) => [u.id, u.name, u.admin ? 'yes' : '-', ago(u.createdAt) + ' ago'])));
    });
  user
    .command('delete <name>')
    .alias('rm')
    .description('Delete a user; their tokens stop working at once')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, o: { yes?: boolean }) => {
      await confirm(`Delete user ${name}? Their tokens stop working at once`, o.yes);
      await ctx.client().users.delete(name);
      process.stdout.write(`Deleted user ${name}.\n`);
    });

  const token = program.command('token').description('Your API tokens');
  token
    .command('create <name>')
    .description('Create an API token and print it (shown once)')
    .option('--expires <days>', 'expire after this many days')
    .option('--read-only', 'only allow reading (GET) requests')
    .action(async (name: string, o: { expires?: string; readOnly?: boolean }) => {
      const r = await ctx.client().tokens.create({ name, expiresInDays: o.expires ? parseCount(o.expires, '--expires') || undefined : undefined, readOnly: o.readOnly });
      process.stderr.write(`Created token ${r.token.id} (${r.token.scope}${r.token.expiresAt ? `, expires ${r.token.expiresAt}` : ''}). Shown only now:\n`);
      process.stdout.write(`${r.secret}\n`);
    });
  token
    .command('list')
    .alias('ls')
    .description('List your API tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const list = await ctx.client().tokens.list();
      if (o.json) return printJson(list);
      process.stdout.write(table(['ID', 'NAME', 'SCOPE', 'STATE', 'EXPIRES', 'LAST USED'], list.map((t) => [
        t.id, t.name, t.scope, t.revokedAt ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) < Date.now() ? 'expired' : 'live',
        t.expiresAt ?? 'never', t.lastUsedAt ? ago(t.lastUsedAt) + ' ago' : 'never',
      ])));
    });
  token
    .command('revoke <id>')
    .description('Revoke a token; it stops working at once')
    .action(async (id: string) => {
      await ctx.client().tokens.revoke(id);
      process.stdout.write(`Revoked ${id}.\n`);
    });

  program
    .command('audit')
    .description('The audit log (yours; everyone’s for an admin)')
    .option('-n, --limit <n>', 'how many entries', '50')
    .option('--json', 'print JSON')
    .action(async (o: { limit: string; json?: boolean }) => {
      const list = await ctx.client().audit(parseCount(o.limit, '--limit') || 50);
      if (o.json) return printJson(list);
      process.stdout.write(table(['TIME', 'USER', 'ACTION', 'TARGET', 'DETAIL'], list.map((a) => [a.at, a.userId ?? '(policy)', a.action, a.target ?? '-', JSON.stringify(a.detail)])));
    });

  program
    .command('approvals')
    .description('Approval requests waiting for you, across all conversations')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const list = await ctx.client().approvals.list();
      if (o.json) return printJson(list);
      if (!list.length) return void process.stdout.write('No approvals waiting.\n');
      const shown = (a: (typeof list)[number]) => {
        const command = (a.input as { command?: unknown } | null)?.command;
        return typeof command === 'string' ? command : JSON.stringify(a.input);
      };
      process.stdout.write(table(['ID', 'CONVERSATION', 'TOOL', 'COMMAND', 'WHY', 'ASKED', 'REFUSED IN'], list.map((a) => [
        a.approvalId, a.conversationId, a.tool, shown(a).slice(0, 80), a.reason ?? '-', ago(a.requestedAt) + ' ago',
        a.expiresAt ? `${Math.max(0, Math.round((Date.parse(a.expiresAt) - Date.now()) / 1000))}s` : '-',
      ])));
    });
  program
    .command('approve <id>')
    .description('Allow a waiting tool call')
    .option('--always', 'also allow this exact command from now on in this workspace (adds a rule; see `workspace rules`)')
    .action(async (id: string, o: { always?: boolean }) => {
      const r = await ctx.client().approvals.decide(id, 'allow', !!o.always);
      process.stdout.write(`Approved ${id}.\n`);
      if (r.rulesAdded?.length) process.stdout.write(`Added to the workspace's rules:\n${r.rulesAdded.map((l) => `  ${l}\n`).join('')}`);
    });
  program
    .command('deny <id>')
    .description('Refuse a waiting tool call')
    .action(async (id: string) => {
      await ctx.client().approvals.decide(id, 'deny');
      process.stdout.write(`Denied ${id}.\n`);
    });
}

async function readSecret(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    return text.trim();
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(prompt);
  rl.close();
  return answer.trim();
}
