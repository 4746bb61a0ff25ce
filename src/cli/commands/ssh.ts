/**
 * @module Editor access: `ssh <id> --stdio` (the SSH protocol on stdin/stdout, for ProxyCommand), `config-ssh`,
 * `ssh-key`, `port-forward` and `sync`. Everything goes through the control plane and the workspace's tunnel,
 * so it works wherever the workspace runs, behind NAT included.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ExitError, UserError } from '../../protocol/errors.js';
import type { ClaudeVmClient, SshHostInfo } from '../../client/client.js';
import { BIN } from '../../client/connect.js';
import { generateSshKey, parsePublicKey } from '../../core/ssh-keys.js';
import type { Context } from '../context.js';
import { printJson, table, ago } from '../render.js';
import { readOrEmpty, renderEntries, withBlock, withoutBlock, writeAtomically, type SshHostEntry } from '../ssh-config.js';

export const HOST_SUFFIX = '.claude-vm';

/** `bold-fire-1234.claude-vm` (what ssh passes as %n) or a plain id or name. */
export function workspaceRef(host: string): string {
  return host.endsWith(HOST_SUFFIX) ? host.slice(0, -HOST_SUFFIX.length) : host;
}

/** The SSH protocol on stdin/stdout, relayed to the workspace's sshd: what ProxyCommand runs. */
export async function sshStdio(client: ClaudeVmClient, ref: string): Promise<never> {
  const stream = await client.ssh.connect(workspaceRef(ref));
  process.stdin.pipe(stream);
  stream.pipe(process.stdout);
  await new Promise<void>((r) => {
    stream.once('close', r);
    stream.once('error', r);
  });
  throw new ExitError(0);
}

export function sshCommands(program: Command, ctx: Context): void {
  const key = program.command('ssh-key').description('SSH public keys that open SSH to your workspaces');
  key
    .command('add [file]')
    .description('Add a public key (default: ~/.ssh/id_ed25519.pub)')
    .option('--name <name>', 'a name for it')
    .action(async (file: string | undefined, o: { name?: string }) => {
      const path = file ?? join(homedir(), '.ssh', 'id_ed25519.pub');
      if (!existsSync(path)) throw new UserError('not_found', `No public key at ${path}.`, 'Pass the .pub file, or run `claude-vm config-ssh`, which makes a key for claude-vm.');
      const k = await ctx.client().ssh.addKey(readFileSync(path, 'utf8').trim(), o.name);
      process.stdout.write(`Added ${k.fingerprint} (${k.name}).\n`);
    });
  key
    .command('list')
    .alias('ls')
    .description('List your SSH keys')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const keys = await ctx.client().ssh.keys();
      if (o.json) return printJson(keys);
      if (!keys.length) return void process.stdout.write('No SSH keys. `claude-vm config-ssh` makes and adds one.\n');
      process.stdout.write(table(['ID', 'NAME', 'FINGERPRINT', 'ADDED'], keys.map((k) => [k.id, k.name, k.fingerprint, ago(k.createdAt) + ' ago'])));
    });
  key
    .command('remove <id>')
    .alias('rm')
    .description('Remove a key (id or fingerprint); it stops working at the next connection')
    .action(async (id: string) => {
      await ctx.client().ssh.removeKey(id);
      process.stdout.write(`Removed ${id}.\n`);
    });

  program
    .command('config-ssh')
    .description('Make every workspace an SSH host (`ssh <id>.claude-vm`, scp, rsync, VS Code Remote-SSH) in ~/.ssh/config')
    .option('--remove', 'take the claude-vm block out of the SSH config again')
    .option('--ssh-config <file>', 'the SSH config to edit', join(homedir(), '.ssh', 'config'))
    .option('--json', 'print the hosts as JSON')
    .addHelpText('after', '\nThe block sits between marker lines and is replaced on every run; the rest of the file is left untouched.\nRun it again after creating workspaces.')
    .action(async (o: { remove?: boolean; sshConfig: string; json?: boolean }) => {
      if (o.remove) {
        const before = readOrEmpty(o.sshConfig);
        const after = withoutBlock(before);
        if (after !== before) writeAtomically(o.sshConfig, after);
        return void process.stdout.write(after !== before ? `Removed the claude-vm hosts from ${o.sshConfig}.\n` : `${o.sshConfig} has no claude-vm hosts.\n`);
      }
      const { hosts, entries } = await prepareSsh(ctx);
      writeAtomically(o.sshConfig, withBlock(readOrEmpty(o.sshConfig), renderEntries(entries)));
      if (o.json) return printJson(hosts);
      if (!hosts.length) return void process.stdout.write(`No workspaces yet; ${o.sshConfig} has an empty claude-vm block. Run this again after \`workspace up\`.\n`);
      process.stdout.write(`Wrote ${hosts.length} host(s) to ${o.sshConfig}:\n`);
      for (const h of hosts) process.stdout.write(`  ssh ${h.host}${h.name ? `   (or ${h.name}${HOST_SUFFIX})` : ''}   ${h.status}\n`);
    });

  program
    .command('port-forward <id> <ports...>')
    .description('Forward local ports to the workspace: 3000 or 8080:3000 (local:remote)')
    .option('--address <addr>', 'local address to listen on', '127.0.0.1')
    .action(async (id: string, specs: string[], o: { address: string }) => {
      const client = ctx.client();
      const w = await client.workspaces.get(id);
      const pairs = specs.map(parsePortSpec);
      const servers: Server[] = [];
      for (const [local, remote] of pairs) {
        const server = createServer((socket) => {
          socket.pause();
          client.ssh.port(w.id, remote).then(
            (stream) => {
              socket.pipe(stream).pipe(socket);
              socket.resume();
              const end = () => (socket.destroy(), stream.destroy());
              socket.on('error', end).on('close', end);
              stream.on('error', end).on('close', end);
            },
            (e: Error) => {
              process.stderr.write(`port ${remote}: ${e.message}\n`);
              socket.destroy();
            },
          );
        });
        await new Promise<void>((ok, fail) => server.once('error', (e: NodeJS.ErrnoException) => fail(new UserError('invalid_argument', `Cannot listen on ${o.address}:${local}: ${e.code}.`, 'Pick another local port: 8080:3000.'))).listen(local, o.address, ok));
        servers.push(server);
        process.stdout.write(`Forwarding ${o.address}:${local} -> ${w.id}:${remote}\n`);
      }
      process.stderr.write('Ctrl-C stops.\n');
      await new Promise<void>((r) => process.once('SIGINT', r).once('SIGTERM', r));
      for (const s of servers) s.close();
    });

  program
    .command('sync <id> [dir]')
    .description("Keep a local folder and the workspace's project in two-way sync (unison over SSH); conflicts are reported, never overwritten")
    .option('--once', 'one pass, then exit')
    .option('--interval <seconds>', 'seconds between passes', '2')
    .action(async (id: string, dir: string | undefined, o: { once?: boolean; interval: string }) => {
      if (spawnSync('unison', ['-version'], { stdio: 'ignore' }).status !== 0) {
        throw new UserError('wrong_state', 'unison is not installed here.', 'Install it (Debian/Ubuntu: apt-get install unison; macOS: brew install unison).');
      }
      const { hosts, configFile } = await prepareSsh(ctx);
      const w = await ctx.client().workspaces.get(id);
      const h = hosts.find((x) => x.workspaceId === w.id);
      if (!h) throw new UserError('not_found', `No workspace matches "${id}".`);
      if (w.status !== 'running') throw new UserError('wrong_state', `Workspace ${w.id} is ${w.status}.`, `Start it with \`claude-vm workspace up ${w.id}\`.`);
      const local = resolve(dir ?? w.project.name);
      mkdirSync(local, { recursive: true });
      const args = [
        local, `ssh://${h.host}/${h.projectDir}`,
        '-batch', '-auto', '-times', '-ui', 'text', '-confirmbigdel=false',
        '-sshargs', `-F ${configFile}`, '-servercmd', 'unison',
        ...ignoreArgs(local, await remoteGitignore(ctx, w.id)),
        ...(o.once ? [] : ['-repeat', String(Math.max(1, Number(o.interval) || 2))]),
      ];
      process.stderr.write(`Syncing ${local} <-> ${h.host}:${h.projectDir}${o.once ? '' : ' (Ctrl-C stops)'}\n`);
      const child = spawn('unison', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UNISON: join(ctx.home, 'unison') } });
      // unison prints each file it skipped because both sides changed it; its exit status 1 says some were skipped.
      let conflicts = 0;
      const report = (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          if (!line.trim()) continue;
          if (/^\s*skipped: .*changed on both sides/.test(line)) conflicts++;
          process.stderr.write(`${line}\n`);
        }
      };
      child.stdout.on('data', report);
      child.stderr.on('data', report);
      process.once('SIGINT', () => child.kill('SIGINT'));
      const code = await new Promise<number>((r) => child.once('close', (c) => r(c ?? 1)));
      if (code === 1 || conflicts) {
        process.stderr.write(`error: ${conflicts || 'some'} change(s) were not synced because both sides changed; nothing was overwritten.\nhint: Resolve them (keep one side's version), then sync again.\n`);
        throw new ExitError(1);
      }
      if (code !== 0) throw new ExitError(code);
    });
}

/**
 * The SSH set-up every command above shares: this CLI's own key (made once, added to the account), the
 * workspaces' host keys in our known_hosts, and a standalone ssh config (for `sync`) with one entry per workspace.
 */
async function prepareSsh(ctx: Context): Promise<{ hosts: SshHostInfo[]; entries: SshHostEntry[]; configFile: string }> {
  const client = ctx.client();
  const dir = join(ctx.home, 'ssh');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, 'id_ed25519');
  if (!existsSync(keyFile)) {
    const pair = generateSshKey(`claude-vm@${hostname()}`);
    writeFileSync(keyFile, pair.privateKey, { mode: 0o600 });
    writeFileSync(`${keyFile}.pub`, pair.publicKey + '\n', { mode: 0o644 });
  }
  const pub = parsePublicKey(readFileSync(`${keyFile}.pub`, 'utf8'));
  if (!(await client.ssh.keys()).some((k) => k.fingerprint === pub.fingerprint)) await client.ssh.addKey(pub.publicKey, `claude-vm on ${hostname()}`);

  const workspaces = (await client.workspaces.list()).filter((w) => w.status !== 'deleted');
  const hosts = await Promise.all(workspaces.map((w) => client.ssh.host(w.id)));
  const knownHosts = join(dir, 'known_hosts');
  writeAtomically(knownHosts, hosts.map((h) => `${[h.host, ...(h.name ? [`${h.name}${HOST_SUFFIX}`] : [])].join(',')} ${h.hostPublicKey}\n`).join(''));
  const home = process.env.CLAUDE_VM_HOME ? `env CLAUDE_VM_HOME=${shellWord(process.env.CLAUDE_VM_HOME)} ` : '';
  const entries: SshHostEntry[] = hosts.map((h) => ({
    hosts: [h.host, ...(h.name ? [`${h.name}${HOST_SUFFIX}`] : [])],
    user: h.user,
    proxyCommand: `${home}${shellWord(process.execPath)} ${shellWord(BIN)} ssh --stdio ${h.workspaceId}`,
    identityFile: keyFile,
    knownHostsFile: knownHosts,
    projectDir: h.projectDir,
  }));
  const configFile = join(dir, 'config');
  writeAtomically(configFile, renderEntries(entries) + '\n');
  return { hosts, entries, configFile };
}

function parsePortSpec(spec: string): [number, number] {
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(spec);
  const local = Number(m?.[1]);
  const remote = Number(m?.[2] ?? m?.[1]);
  if (!m || !(local >= 1 && local <= 65535 && remote >= 1 && remote <= 65535)) {
    throw new UserError('invalid_argument', `Invalid port "${spec}".`, 'Write 3000 (same port both sides) or 8080:3000 (local:remote).');
  }
  return [local, remote];
}

/** The workspace's .gitignore: on a first sync the local folder has none yet, and ignored trees must not come down. */
async function remoteGitignore(ctx: Context, id: string): Promise<string> {
  let text = '';
  const sink = new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) });
  const h = await ctx.client().workspaces.exec(id, { argv: ['sh', '-c', 'cat .gitignore 2>/dev/null || true'], stdout: sink, stderr: new Writable({ write: (_c, _e, cb) => cb() }) });
  await h.exit;
  return text;
}

/** .gitignore lines (local and the workspace's) as unison ignore rules: a name anywhere, or a path from the root. .git is never synced. */
function ignoreArgs(dir: string, remote: string): string[] {
  const rules = new Set(['Name .git']);
  const file = join(dir, '.gitignore');
  const texts = [remote, existsSync(file) ? readFileSync(file, 'utf8') : ''];
  for (const text of texts) {
    for (let line of text.split('\n')) {
      line = line.trim();
      if (!line || line.startsWith('#') || line.startsWith('!')) continue;
      line = line.replace(/\/+$/, '');
      rules.add(line.includes('/') ? `Path ${line.replace(/^\/+/, '')}` : `Name ${line}`);
    }
  }
  return [...rules].flatMap((r) => ['-ignore', r]);
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

