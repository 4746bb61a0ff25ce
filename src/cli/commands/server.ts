/** @module `claude-vm server`: the control plane. Local mode needs no flags; teams add --db postgres://… */
import type { Command } from 'commander';
import { DEFAULT_POLICY } from '../../server/policy-defaults.js';
import type { ServerFile } from '../../server/server.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { runsOffline } from '../offline.js';
import { UserError } from '../../protocol/errors.js';
import { parseCount, parseDuration } from '../options.js';

interface ServerFlags {
  listen: string;
  db?: string;
  publicUrl?: string;
  internalUrl?: string;
  secretKeyFile?: string;
  maxRunning: string;
  launchesPerHour: string;
  idleStop?: string;
  autoDeleteAfter?: string;
  policyInterval: string;
  snapshotStore?: string;
  snapshotEncrypt?: boolean;
  snapshotKeep: string;
  snapshotInterval?: string;
  snapshotExclude?: string[];
  snapshotCaches?: boolean;
}

export function serverCommands(program: Command, ctx: Context): void {
  runsOffline(program.command('server'))
    .description('Run the control plane: the API, workspace tunnels, users and policies')
    .option('--listen <host:port>', 'where to serve the API', '127.0.0.1:7477')
    .option('--db <url>', 'sqlite:PATH (default: $CLAUDE_VM_HOME/state.db) or postgres://user@host/db for teams')
    .option('--public-url <url>', 'the URL remote workspaces dial to reach this server (https://cp.example.com)')
    .option('--internal-url <url>', 'where the other processes of a team deployment reach this one (default: the --listen address)')
    .option('--secret-key-file <file>', 'key that encrypts stored secrets (32 bytes, base64); share it between the processes of a team deployment')
    .option('--max-running <n>', 'running workspaces allowed per user', String(DEFAULT_POLICY.maxRunning))
    .option('--launches-per-hour <n>', 'workspace launches allowed per user per hour', String(DEFAULT_POLICY.launchesPerHour))
    .option('--idle-stop <duration>', 'stop workspaces idle this long (no turn, nobody attached), unless they set their own; e.g. 30m')
    .option('--auto-delete-after <duration>', 'delete workspaces stopped this long, e.g. 14d (their data is kept)')
    .option('--policy-interval <duration>', 'how often policies run', '30s')
    .option('--snapshot-store <url>', 'where snapshots go: file:PATH or s3://bucket/prefix?endpoint=URL (credentials from the AWS_* variables); "off" disables (default: $CLAUDE_VM_SNAPSHOT_STORE, else $CLAUDE_VM_HOME/snapshots)')
    .option('--snapshot-encrypt', 'encrypt snapshots before they leave the server (key derived from its secret key)')
    .option('--snapshot-keep <n>', 'snapshots kept per workspace', '10')
    .option('--snapshot-interval <duration>', 'also snapshot running workspaces this often, e.g. 1h (default: only on down, delete and demand)')
    .option('--snapshot-exclude <pattern>', 'leave out paths like this (repeatable; replaces the default, node_modules); a project can add its own in .claudevmignore', (v: string, all: string[] = []) => [...all, v])
    .option('--snapshot-caches', 'include package caches, installed agents and editor servers in snapshots')
    .option('--stop', "stop this home's running server (the one the CLI starts by itself) and exit")
    .addHelpText('after', `
On first start the server creates an admin user and writes its token to $CLAUDE_VM_HOME/token (mode 0600),
which the CLI on this machine uses. Other users get tokens from \`claude-vm user add <name>\`.

Examples:
  claude-vm server                                          local, SQLite, loopback only
  claude-vm server --listen 0.0.0.0:7477 --db postgres://cvm@db/cvm --public-url https://cvm.example.com
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… claude-vm server --snapshot-store 's3://bucket/cvm?endpoint=https://minio.example.com' --snapshot-encrypt`)
    .action(async (o: ServerFlags & { stop?: boolean }) => {
      if (o.stop) return stopServer(ctx.home);
      const idle = o.idleStop ? parseDuration(o.idleStop, '--idle-stop') : 0;
      // Loaded here: every other command starts faster without the server's modules.
      const { startServer } = await import('../../server/server.js');
      const s = await startServer({
        home: ctx.home,
        listen: o.listen,
        db: o.db,
        publicUrl: o.publicUrl,
        internalUrl: o.internalUrl,
        secretKeyFile: o.secretKeyFile,
        policy: {
          maxRunning: parseCount(o.maxRunning, '--max-running'),
          launchesPerHour: parseCount(o.launchesPerHour, '--launches-per-hour'),
          idleStopSeconds: idle || null,
          autoDeleteSeconds: o.autoDeleteAfter ? parseDuration(o.autoDeleteAfter, '--auto-delete-after') || null : null,
          intervalMs: Math.max(1, parseDuration(o.policyInterval, '--policy-interval')) * 1000,
        },
        snapshots: {
          store: o.snapshotStore ?? process.env.CLAUDE_VM_SNAPSHOT_STORE,
          encrypt: o.snapshotEncrypt,
          keep: Math.max(1, parseCount(o.snapshotKeep, '--snapshot-keep')),
          intervalSeconds: o.snapshotInterval ? parseDuration(o.snapshotInterval, '--snapshot-interval') || null : null,
          exclude: o.snapshotExclude,
          includeCaches: o.snapshotCaches,
        },
      });
      process.stderr.write(`claude-vm server ${s.cp.instanceId} listening on ${s.url} and ${s.socketPath} (pid ${process.pid})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void s.close().finally(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}

async function stopServer(home: string): Promise<void> {
  let file: ServerFile;
  try {
    file = JSON.parse(readFileSync(join(home, 'server.json'), 'utf8')) as ServerFile;
  } catch {
    return void process.stdout.write(`No server is running for ${home}.\n`);
  }
  try {
    process.kill(file.pid, 'SIGTERM');
  } catch {
    return void process.stdout.write(`No server is running for ${home} (pid ${file.pid} is gone).\n`);
  }
  // Its workspaces keep running; their daemons reconnect to the next server by themselves.
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(file.pid, 0);
    } catch {
      return void process.stdout.write(`Stopped the server (pid ${file.pid}); workspaces keep running.\n`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new UserError('provider_unavailable', `The server (pid ${file.pid}) did not stop within 10 s.`, `kill -9 ${file.pid}`);
}
