/**
 * @module Local provider: a directory under $CLAUDE_VM_HOME and plain host processes, for machines without Docker.
 * It does not isolate anything: the agent runs as you, with your files and network. The CLI says so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../protocol/errors.js';
import { cpus, totalmem } from 'node:os';
import type { ControlPlaneEndpoints, ExecHandle, ExecOptions, LogOptions, Provider, ProviderFactory, ResourceRefs, RuntimeStatus, WorkspaceSpec } from '../provider.js';

export class LocalProvider implements Provider {
  readonly type = 'local';
  readonly isolates = false;

  constructor(private readonly home: string) {}

  workspaceRoot = (refs: ResourceRefs): string => join(need(refs), 'workspace');

  async check(): Promise<void> {}

  async create(spec: WorkspaceSpec): Promise<ResourceRefs> {
    // An existing directory is this workspace's kept data (after `delete` without --purge): reuse it.
    const dir = join(this.home, 'local', spec.id);
    mkdirSync(join(dir, 'workspace'), { recursive: true });
    writeFileSync(join(dir, 'env.json'), JSON.stringify(spec.env));
    writeFileSync(join(dir, 'state'), 'stopped');
    return { dir };
  }

  async start(refs: ResourceRefs): Promise<void> {
    if (!existsSync(join(need(refs), 'workspace'))) throw gone(refs);
    writeFileSync(join(need(refs), 'state'), 'running');
  }

  async stop(refs: ResourceRefs): Promise<void> {
    // The workspace's processes are its private tmux server and its daemon (with the agents it started).
    spawnSync('tmux', ['-L', tmuxSocket(refs), 'kill-server'], { stdio: 'ignore' });
    spawnSync('pkill', ['-f', join(this.workspaceRoot(refs), '.claude-vm', 'daemon')], { stdio: 'ignore' });
    if (existsSync(need(refs))) writeFileSync(join(need(refs), 'state'), 'stopped');
  }

  async delete(refs: ResourceRefs, opts: { purge: boolean }): Promise<void> {
    await this.stop(refs);
    if (opts.purge) rmSync(need(refs), { recursive: true, force: true });
  }

  async status(refs: ResourceRefs): Promise<RuntimeStatus> {
    const dir = need(refs);
    if (!existsSync(join(dir, 'workspace'))) return { state: 'missing', detail: `directory ${dir} no longer exists` };
    return { state: readFileSync(join(dir, 'state'), 'utf8').trim() === 'running' ? 'running' : 'stopped' };
  }

  async exec(refs: ResourceRefs, opts: ExecOptions): Promise<ExecHandle> {
    if ((await this.status(refs)).state !== 'running') {
      throw new UserError('wrong_state', 'The workspace is not running.', 'Start it with `claude-vm workspace up <id>`.');
    }
    const env = { ...process.env, ...JSON.parse(readFileSync(join(need(refs), 'env.json'), 'utf8')), ...opts.env, CLAUDE_VM_TMUX_SOCKET: tmuxSocket(refs) };
    const [first, ...rest] = opts.argv;
    let [cmd, argv] = [first!, first === 'tmux' ? ['-L', tmuxSocket(refs), ...rest] : rest];
    // A terminal for a remote client: util-linux `script` allocates a pty without a native module. Resizing after
    // the start is not passed on (a limit of this no-isolation fallback).
    if (opts.tty) {
      const inner = [cmd, ...argv].map(shellQuote).join(' ');
      [cmd, argv] = ['script', ['-q', '-f', '-e', '-c', `stty rows ${opts.tty.rows} cols ${opts.tty.cols} 2>/dev/null; exec ${inner}`, '/dev/null']];
    }
    const child = spawn(cmd, argv, {
      cwd: opts.cwd ?? this.workspaceRoot(refs),
      env,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    if (opts.stdin && child.stdin) opts.stdin.pipe(child.stdin);
    child.stdout!.pipe(opts.stdout, { end: false });
    child.stderr!.pipe(opts.stderr ?? opts.stdout, { end: false });
    const exit = new Promise<number>((resolve) => {
      child.on('error', (e) => {
        (opts.stderr ?? opts.stdout).write(`${cmd}: ${e.message}\n`);
        resolve(127);
      });
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    });
    return { exit, resize: () => undefined };
  }

  tunnelUrl(_refs: ResourceRefs, cp: ControlPlaneEndpoints): string {
    return `unix:${cp.socketPath}`;
  }

  async logs(refs: ResourceRefs, opts: LogOptions): Promise<void> {
    const file = join(need(refs), 'workspace.log');
    if (existsSync(file)) opts.stdout.write(readFileSync(file));
  }
}

function need(refs: ResourceRefs): string {
  if (!refs.dir) throw new UserError('wrong_state', 'This workspace has no directory recorded.');
  return refs.dir;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function tmuxSocket(refs: ResourceRefs): string {
  return `claude-vm-${need(refs).split('/').pop()}`;
}

function gone(refs: ResourceRefs): UserError {
  return new UserError('wrong_state', `The workspace directory ${refs.dir} no longer exists.`, 'Delete the workspace with `claude-vm workspace delete <id> --purge`.');
}

export const localProviderFactory: ProviderFactory = {
  type: 'local',
  description: 'Host directory and processes, no isolation (for machines without Docker)',
  isolates: false,
  options: [],
  sizes: { host: { cpus: cpus().length, memoryMb: Math.round(totalmem() / 2 ** 20) } },
  defaultSize: 'host',
  pricePerHour: () => 0,
  create: (_options, home) => new LocalProvider(home),
};
