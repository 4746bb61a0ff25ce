/**
 * @module A second Docker engine behind a real OpenSSH server on loopback: what `provider add ssh` meets on a VPS.
 * The engine has its own data root, so it holds nothing of this machine's images, containers or volumes, and its
 * own bridge and no iptables rules, so it never touches the first engine's network (started with `--bridge=none`,
 * a second dockerd deletes docker0 from under the first). The tests' workspaces use host networking, which is how
 * they reach the scripted model servers on this machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './cp-process.js';

export interface RemoteDockerHost {
  /** `--option` pairs for `provider add … --type ssh`. */
  options: Record<string, string>;
  /** Runs the docker CLI against the remote engine. */
  docker(...args: string[]): { status: number | null; stdout: string; stderr: string };
  /** Stops sshd (as a network drop would); `startSshd` brings it back on the same port. */
  stopSshd(): Promise<void>;
  startSshd(): Promise<void>;
  close(): Promise<void>;
}

/** Kept across local runs so the copied image is reused; CI starts from nothing either way. */
const DATA_ROOT = '/var/lib/claude-vm-test-remote-docker';

export async function startRemoteDockerHost(): Promise<RemoteDockerHost> {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-remote-'));
  // Unix socket paths must stay short (108 bytes), so the engine's run directory is not under the temp dir.
  const run = `/run/cvm-rd-${process.pid}`;
  mkdirSync(run, { recursive: true });
  const socket = `${run}/docker.sock`;
  const bridge = `cvmrd${process.pid % 100000}`;
  const ip = (...a: string[]) => spawnSync('ip', a, { encoding: 'utf8' });
  const hadDocker0 = ip('link', 'show', 'docker0').status === 0;
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', '172.31.213.1/24', 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  const dockerd = spawn('dockerd', [
    '--host', `unix://${socket}`,
    '--data-root', DATA_ROOT,
    '--exec-root', `${run}/exec`,
    '--pidfile', `${run}/docker.pid`,
    '--iptables=false', '--ip6tables=false', `--bridge=${bridge}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let engineLog = '';
  dockerd.stderr!.on('data', (d: Buffer) => (engineLog = (engineLog + d.toString()).slice(-4000)));
  const docker = (...args: string[]) => spawnSync('docker', ['-H', `unix://${socket}`, ...args], { encoding: 'utf8' });
  for (let i = 0; docker('info').status !== 0; i++) {
    if (dockerd.exitCode !== null || i > 120) throw new Error(`the second dockerd did not start:\n${engineLog}`);
    await new Promise((r) => setTimeout(r, 250));
  }

  // sshd with its own host key, accepting one client key, root allowed (it is the engine's owner here).
  mkdirSync('/run/sshd', { recursive: true });
  const keygen = (file: string) => spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'id'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id.pub')));
  const port = await freePort();
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(join(dir, 'host_key.pub'), 'utf8')}`);
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowStreamLocalForwarding yes',
  ].join('\n') + '\n');
  let sshd: ChildProcess | undefined;
  const startSshd = async () => {
    let log = '';
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.on('data', (d: Buffer) => (log += d));
    for (let i = 0; !/Server listening/.test(log); i++) {
      if (sshd.exitCode !== null || i > 100) throw new Error(`sshd did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopSshd = async () => {
    if (!sshd || sshd.exitCode !== null) return;
    const exited = new Promise((r) => sshd!.once('exit', r));
    // The listener and every session it forked (the tunnel with them), as when the host drops off the network.
    spawnSync('pkill', ['-KILL', '-P', String(sshd.pid)]);
    sshd.kill('SIGKILL');
    await exited;
  };
  await startSshd();

  return {
    options: {
      host: 'root@127.0.0.1',
      port: String(port),
      identity: join(dir, 'id'),
      'known-hosts': join(dir, 'known_hosts'),
      'docker-socket': socket,
      network: 'host',
    },
    docker,
    stopSshd,
    startSshd,
    close: async () => {
      await stopSshd();
      // Workspaces left by a failed test must not keep the engine from stopping.
      const ids = docker('ps', '-aq', '--filter', 'label=dev.claude-vm.workspace').stdout.split('\n').filter(Boolean);
      if (ids.length) docker('rm', '-f', ...ids);
      const exited = new Promise((r) => dockerd.once('exit', r));
      dockerd.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (dockerd.exitCode === null) dockerd.kill('SIGKILL');
      ip('link', 'delete', bridge);
      if (hadDocker0 && ip('link', 'show', 'docker0').status !== 0) throw new Error('the second dockerd removed docker0 from the first engine');
    },
  };
}
