/**
 * @module One OpenSSH connection per remote Docker host, kept up for as long as this process runs. It carries two
 * forwards: the remote engine's socket to a socket on this machine (so the Docker provider talks to it as to a local
 * engine), and this control plane's socket to a socket on the remote host (which workspaces there mount, so their
 * daemons dial out to the control plane without any port being opened on either side).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { UserError } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';

export interface SshTarget {
  /** `user@host` or a Host alias from ~/.ssh/config. */
  destination: string;
  port?: string;
  identity?: string;
  knownHosts?: string;
  /** The engine's socket on the remote host. */
  dockerSocket: string;
}

/** Reconnect delays after the connection drops: quick at first, then at most every 30 s, for as long as we run. */
const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];
const CONNECT_TIMEOUT_S = 15;

export class SshTunnel {
  /** This machine's end of the remote engine's socket. */
  readonly engineSocket: string;
  /** The remote directory holding `server.sock`, this control plane's socket; known after the first connection. */
  remoteDir?: string;
  private child?: ChildProcess;
  private connecting?: Promise<void>;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly target: SshTarget,
    /** This control plane's socket, forwarded to the remote host. */
    private readonly controlPlaneSocket: string,
    runDir: string,
    /** Names the remote directory, so two control planes using one host never share a socket. */
    private readonly label: string,
  ) {
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    this.engineSocket = join(runDir, `ssh-${hash(JSON.stringify(target))}.sock`);
  }

  get where(): string {
    return this.target.destination + (this.target.port ? `:${this.target.port}` : '');
  }

  /** Resolves once both forwards are up: at once when they are, else after (re)connecting. */
  ready(progress?: ProgressFn): Promise<void> {
    if (this.closed) return Promise.reject(new UserError('provider_unavailable', `The SSH connection to ${this.where} was closed.`));
    if (this.child && !this.connecting) return Promise.resolve();
    this.connecting ??= this.connect(progress).finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Connects now and, whatever happens, keeps reconnecting: remote daemons wait on this end of the tunnel. */
  keepUp(): void {
    this.ready().catch(() => this.reconnectLater());
  }

  close(): void {
    this.closed = true;
    this.child?.kill();
  }

  private async connect(progress?: ProgressFn): Promise<void> {
    progress?.({ step: 'Connecting over SSH', detail: this.where });
    if (!this.remoteDir) this.remoteDir = await this.prepareRemote();
    const name = `c-${randomBytes(6).toString('hex')}.sock`;
    // Runs once both forwards are bound: opens the socket to the workspaces' uid (sshd creates it owner-only; the
    // tunnel token, not the mode, guards it), points server.sock at it, drops sockets of earlier connections, then
    // waits on stdin, so that this process dying ends the remote side too.
    const script = [
      `cd ${sq(this.remoteDir)} || exit 1`,
      `chmod 666 ${name}`,
      `ln -sfn ${name} server.sock.new && mv -f server.sock.new server.sock`,
      `for f in c-*.sock; do [ "$f" = ${name} ] || rm -f "$f"; done`,
      'echo claude-vm-tunnel-ready',
      'exec cat >/dev/null',
    ].join('; ');
    const child = spawn('ssh', [
      ...this.baseArgs(),
      '-o', 'ExitOnForwardFailure=yes',
      '-o', 'ServerAliveInterval=15',
      '-o', 'ServerAliveCountMax=3',
      '-o', 'StreamLocalBindUnlink=yes',
      '-L', `${this.engineSocket}:${this.target.dockerSocket}`,
      '-R', `${this.remoteDir}/${name}:${this.controlPlaneSocket}`,
      this.target.destination,
      script,
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.stdin!.on('error', () => undefined);
    const up = await new Promise<boolean>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('claude-vm-tunnel-ready')) resolve(true);
      });
      child.once('exit', () => resolve(false));
      child.once('error', () => resolve(false));
    });
    if (!up) throw sshError(this.where, stderr, 'could not set up its forwards');
    await waitForSocket(this.engineSocket);
    this.child = child;
    this.failures = 0;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
      if (!this.closed) this.reconnectLater();
    });
  }

  /** Keeps the control plane reachable for the remote workspaces' daemons even when nobody calls the provider. */
  private reconnectLater(): void {
    const delay = BACKOFF_MS[Math.min(this.failures++, BACKOFF_MS.length - 1)]!;
    setTimeout(() => {
      if (this.closed || this.child) return;
      this.ready().catch(() => this.reconnectLater());
    }, delay).unref();
  }

  /** Checks login and the engine socket, and makes the remote socket directory; returns its absolute path. */
  private async prepareRemote(): Promise<string> {
    const dir = `.claude-vm/run/${this.label}`;
    const sock = sq(this.target.dockerSocket);
    const script = [
      `mkdir -p ${dir} && chmod 755 ${dir} && cd ${dir} && pwd`,
      `if [ ! -S ${sock} ]; then echo "claude-vm: no-socket"; elif [ ! -w ${sock} ]; then echo "claude-vm: no-access"; fi`,
    ].join('; ');
    const { code, stdout, stderr } = await runSsh([...this.baseArgs(), this.target.destination, script]);
    if (code !== 0) throw sshError(this.where, stderr, 'refused the connection or the login');
    if (stdout.includes('claude-vm: no-socket')) {
      throw new UserError('provider_unavailable', `There is no Docker engine socket at ${this.target.dockerSocket} on ${this.where}.`, 'Install and start Docker there, or set --option docker-socket=PATH.');
    }
    if (stdout.includes('claude-vm: no-access')) {
      throw new UserError('provider_unavailable', `The SSH user on ${this.where} may not use ${this.target.dockerSocket}.`, 'Add that user to the docker group there (then log in again), or connect as root.');
    }
    const path = stdout.split('\n')[0]?.trim();
    if (!path?.startsWith('/')) throw new UserError('provider_unavailable', `Unexpected answer from ${this.where}: ${JSON.stringify(stdout.slice(0, 200))}.`);
    return path;
  }

  private baseArgs(): string[] {
    const t = this.target;
    return [
      // Never prompt (there is nobody to answer), and never join or become a multiplexing master of the user's.
      '-o', 'BatchMode=yes',
      '-o', 'ControlMaster=no',
      '-o', 'ControlPath=none',
      '-o', `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
      ...(t.port ? ['-p', t.port] : []),
      ...(t.identity ? ['-i', t.identity, '-o', 'IdentitiesOnly=yes'] : []),
      ...(t.knownHosts ? ['-o', `UserKnownHostsFile=${t.knownHosts}`] : []),
    ];
  }
}

const tunnels = new Map<string, SshTunnel>();

/** The process-wide tunnel for a target: every provider instance for one host shares one connection. */
export function tunnelFor(target: SshTarget, controlPlaneSocket: string, runDir: string, label: string): SshTunnel {
  const key = JSON.stringify([target, controlPlaneSocket]);
  let t = tunnels.get(key);
  if (!t) tunnels.set(key, (t = new SshTunnel(target, controlPlaneSocket, runDir, label)));
  return t;
}

export function closeAllTunnels(): void {
  for (const t of tunnels.values()) t.close();
  tunnels.clear();
}
process.once('exit', closeAllTunnels);

function sshError(where: string, stderr: string, what: string): UserError {
  const why = stderr.trim().split('\n').filter((l) => !l.startsWith('Warning: Permanently added')).pop() ?? '';
  const hint = /host key verification failed/i.test(why)
    ? `Connect once with \`ssh ${where.replace(/:\d+$/, '')}\` to accept its host key, or pass --option known-hosts=FILE.`
    : /permission denied/i.test(why)
      ? 'Check that `ssh` logs in there without a password (a key in ssh-agent, or --option identity=FILE).'
      : /command not found|no such file/i.test(why) && /ssh/.test(why)
        ? 'Install the OpenSSH client (`apt-get install openssh-client`).'
        : `Check that \`ssh ${where.replace(/:\d+$/, '')}\` works from this machine.`;
  return new UserError('provider_unavailable', `SSH to ${where} ${what}${why ? `: ${why}` : ''}.`, hint);
}

function runSsh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (e) => resolve({ code: 127, stdout, stderr: `ssh: ${e.message}` }));
    child.once('close', (code) => resolve({ code: code ?? 255, stdout, stderr }));
  });
}

async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(path);
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new UserError('provider_unavailable', 'The SSH forward of the remote Docker socket did not open.');
}

/** Single-quotes a word for the remote shell. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}
