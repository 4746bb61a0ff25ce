/**
 * @module What a tunnel stream connects to inside the workspace: an SSH server for the workspace user (OpenSSH's
 * sshd in inetd mode, one per connection, with the keys the control plane sent for this connection only), or
 * a TCP port on the workspace's loopback.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import type { StreamTarget } from '../protocol/mux.js';

const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'];

/** Opens the target; resolves once it is usable, so the control plane can say "opened" or give the reason. */
export function openTarget(target: StreamTarget, privateDir: string): Promise<Duplex> {
  if (target.kind === 'tcp') {
    return new Promise((resolve, reject) => {
      if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) return reject(new Error(`invalid port ${target.port}`));
      const socket = connect(target.port, '127.0.0.1');
      socket.once('connect', () => resolve(socket));
      socket.once('error', (e) => reject(new Error(`nothing listens on port ${target.port} in the workspace (${(e as NodeJS.ErrnoException).code ?? e.message})`)));
    });
  }
  const sshd = SSHD.find((p) => existsSync(p));
  if (!sshd) return Promise.reject(new Error('this workspace image has no OpenSSH server (sshd); use the claude-vm image or install openssh-server'));
  // Keys live outside the volume, rewritten for every connection: a removed key stops working at the next one.
  const dir = join(privateDir, 'ssh');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'host_key'), target.hostKey.endsWith('\n') ? target.hostKey : `${target.hostKey}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), target.authorizedKeys, { mode: 0o600 });
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PidFile none',
      'UsePAM no',
      // Its files are under /tmp (off the volume), which StrictModes would refuse as world-writable.
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'GatewayPorts no',
      'PermitTTY yes',
      'X11Forwarding no',
      'PrintMotd no',
      'PrintLastLog no',
      'AcceptEnv LANG LC_* CLAUDE_VM_PROJECT_DIR',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return new Promise((resolve, reject) => {
    // Inetd mode: the connection is this process's stdin and stdout. As the workspace user, sshd can only log in
    // the workspace user, which is exactly what is wanted.
    const child = spawn(sshd, ['-i', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('error', (e) => reject(new Error(`cannot start sshd: ${e.message}`)));
    child.once('spawn', () => {
      const d = Duplex.from({ readable: child.stdout, writable: child.stdin });
      child.once('exit', (code) => {
        if (code && err.trim()) process.stderr.write(`claude-vm-daemon: sshd exited ${code}: ${err.trim().split('\n').slice(-2).join(' / ')}\n`);
      });
      d.once('close', () => child.kill());
      resolve(d);
    });
  });
}
