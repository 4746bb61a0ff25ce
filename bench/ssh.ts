/**
 * SSH to a workspace through the control plane and the workspace's tunnel, against Docker in the same run (issue goals):
 *   - `ssh <host> true` round trip vs `docker exec <container> true` (both reported, and the ratio)
 *   - scp of a 100 MiB file, up and down, vs `docker cp` in and out: goal ≥ 0.5× docker cp's throughput
 * To tell SSH's own cost from the tunnel's, the same sshd (same config, host key, client key, ciphers) is also reached
 * without the tunnel, ProxyCommand `docker exec -i -u dev <container> sshd -i -f …/sshd_config`, and the bare docker
 * exec byte stream is timed (`cat file | docker exec -i <container> sh -c 'cat >/dev/null'`, and back). What bounds scp
 * here is shown by the CPU every process spends on one more transfer of each kind (sampled from /proc), OpenSSL's
 * single-core cipher speeds, and scp with ChaCha20 instead of the AES-GCM our config-ssh entries prefer.
 * Run: `npm run build && node dist/bench/ssh.js [runs]` (default 5; Docker and the workspace image; BENCH_SSH_MB=100).
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO, 'bin', 'claude-vm.js');
const IMAGE = process.env.CLAUDE_VM_TEST_IMAGE || 'claude-vm/workspace:latest';
const RUNS = Number(process.argv[2] ?? 5);
const MIB = Number(process.env.BENCH_SSH_MB ?? 100);
const BYTES = MIB * 1024 * 1024;
const HOME = mkdtempSync(join(tmpdir(), 'cvm-bench-ssh-'));
const WORK = mkdtempSync(join(tmpdir(), 'cvm-bench-ssh-files-'));
const env = { ...process.env, CLAUDE_VM_HOME: HOME };
const CHACHA = 'chacha20-poly1305@openssh.com';

type Io = { stdin?: string; stdout?: string };
/** Runs to completion; stdin/stdout may be files. Returns milliseconds; throws with stderr on failure. */
function timed(cmd: string, args: string[], io: Io = {}): number {
  const fds = [io.stdin ? openSync(io.stdin, 'r') : 'ignore', io.stdout ? openSync(io.stdout, 'w') : 'pipe'] as const;
  const opts: SpawnSyncOptions = { encoding: 'utf8', env, stdio: [fds[0], fds[1], 'pipe'], maxBuffer: 1 << 20 };
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, opts);
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  for (const fd of fds) if (typeof fd === 'number') closeSync(fd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${String(r.stderr).trim()}`);
  return ms;
}
const out = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
};
const cvm = (...a: string[]) => out(process.execPath, [BIN, ...a]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: number[]) => Math.min(...xs);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------ CPU by process

const TICK = Number(out('getconf', ['CLK_TCK'])) || 100;
function procStat(pid: number): { comm: string; ppid: number; ticks: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}
/** Busy share of all CPUs over a short window (from /proc/stat): how loaded the machine is without us. */
async function machineBusy(ms: number): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = f[3]! + f[4]!;
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

interface Profile { ms: number; cpu: Map<string, number> }
const inContainer = new Map<number, boolean>();
/**
 * Runs a command while sampling, every 25 ms, the CPU time of: its descendants (scp, ssh, the ProxyCommand, the docker
 * CLI), every process in the workspace's container (sshd, the daemon, cat), the control plane, and Docker's own
 * processes with their children (the docker exec stream and docker cp go through them). CPU seconds by role.
 */
async function sampled(cmd: string, args: string[], io: Io, cid: string, serverPid: number): Promise<Profile> {
  const procs = new Map<number, { name: string; start: number; last: number }>();
  let root = -1;
  const scan = (first: boolean) => {
    const all = new Map<number, { comm: string; ppid: number; ticks: number }>();
    for (const d of readdirSync('/proc')) if (/^\d+$/.test(d)) {
      const s = procStat(Number(d));
      if (s) all.set(Number(d), s);
    }
    const below = (roots: number[]) => {
      const set = new Set(roots);
      for (let grew = true; grew;) {
        grew = false;
        for (const [pid, s] of all) if (!set.has(pid) && set.has(s.ppid)) set.add(pid), (grew = true);
      }
      return set;
    };
    const mine = root > 0 ? below([root]) : new Set<number>();
    // comm is cut at 15 characters: containerd-shim-runc-v2 shows as containerd-shim.
    const docker = below([...all].filter(([, s]) => /^(dockerd|containerd|containerd-shim)$/.test(s.comm)).map(([pid]) => pid));
    for (const [pid, s] of all) {
      let inside = inContainer.get(pid);
      if (inside === undefined) {
        try { inside = readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(cid); } catch { inside = false; }
        inContainer.set(pid, inside);
      }
      let name: string | undefined;
      if (pid === serverPid) name = 'control plane (node)';
      else if (mine.has(pid)) name = s.comm === 'node' ? 'ProxyCommand (node)' : s.comm === 'docker' ? 'docker CLI' : s.comm;
      else if (inside) name = s.comm === 'node' ? 'daemon (node, in container)' : `${s.comm} (in container)`;
      else if (docker.has(pid)) name = s.comm;
      if (!name) continue;
      const p = procs.get(pid);
      if (p) p.last = s.ticks;
      else procs.set(pid, { name, start: first ? s.ticks : 0, last: s.ticks });
    }
  };
  scan(true);
  const fds = [io.stdin ? openSync(io.stdin, 'r') : 'ignore', io.stdout ? openSync(io.stdout, 'w') : 'ignore'] as const;
  const t = process.hrtime.bigint();
  const child = spawn(cmd, args, { env, stdio: [fds[0], fds[1], 'pipe'] });
  root = child.pid ?? -1;
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setInterval(() => scan(false), 25);
  const code = await new Promise<number | null>((r) => child.once('close', r));
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  clearInterval(timer);
  scan(false);
  for (const fd of fds) if (typeof fd === 'number') closeSync(fd);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${err.trim()}`);
  const cpu = new Map<string, number>();
  for (const p of procs.values()) if (p.last > p.start) cpu.set(p.name, (cpu.get(p.name) ?? 0) + (p.last - p.start) / TICK);
  return { ms, cpu };
}
const totalCpu = (p: Profile) => [...p.cpu.values()].reduce((a, b) => a + b, 0);
const cpuOf = (p: Profile, re: RegExp) => [...p.cpu].filter(([n]) => re.test(n)).reduce((a, [, s]) => a + s, 0);
/** SSH's own processes: the client (scp, ssh) and sshd (which serves SFTP itself: internal-sftp). */
const SSH_PROCS = /^(ssh|scp|sshd \(in container\))$/;
const TUNNEL_PROCS = /^(ProxyCommand|control plane|daemon)/;

/** OpenSSL's single-core speed for a cipher on 16 KiB blocks, MB/s. */
function cipherSpeed(evp: string): number {
  const r = spawnSync('openssl', ['speed', '-evp', evp, '-seconds', '1', '-bytes', '16384'], { encoding: 'utf8' });
  const m = /\s([\d.]+)k\s*$/.exec(r.stdout.trim().split('\n').pop() ?? '');
  return m ? Number(m[1]) / 1000 : NaN;
}

// ------------------------------------------------------------------------------------------------ set-up

let wsId = '';
let cleaned = false;
function cleanUp(): void {
  if (cleaned) return;
  cleaned = true;
  try { if (wsId) cvm('workspace', 'delete', wsId, '--purge', '-y'); } catch (e) { console.error(`cleanup: ${(e as Error).message}`); }
  try { cvm('server', '--stop'); } catch (e) { console.error(`cleanup: ${(e as Error).message}`); }
  rmSync(WORK, { recursive: true, force: true });
  rmSync(HOME, { recursive: true, force: true });
}
process.once('SIGINT', () => (cleanUp(), process.exit(130)));

try {
  const busyBefore = await machineBusy(2000);
  const ws = JSON.parse(cvm('workspace', 'up', '--image', IMAGE, '--name', 'bench', '--json')) as { id: string };
  wsId = ws.id;
  const C = `claude-vm-${ws.id}`;
  const cid = out('docker', ['inspect', '-f', '{{.Id}}', C]);
  const cfg = join(WORK, 'ssh_config');
  cvm('config-ssh', '--ssh-config', cfg);
  const cfgText = readFileSync(cfg, 'utf8');
  const HOST = 'bench.claude-vm';
  const user = /^\s*User (\S+)/m.exec(cfgText)?.[1] ?? 'dev';
  const ciphers = /^\s*Ciphers (\S+)/m.exec(cfgText)?.[1];
  const identity = /^\s*IdentityFile (.+)$/m.exec(cfgText)![1]!.trim();
  const serverPid = (JSON.parse(readFileSync(join(HOME, 'server.json'), 'utf8')) as { pid: number }).pid;
  const ssh = ['-F', cfg, '-o', 'BatchMode=yes'];
  timed('ssh', [...ssh, HOST, 'true']); // the first connection writes the sshd config the direct path uses

  // The same sshd without the tunnel: inetd mode on the docker exec stream, same files, throwaway known_hosts.
  const uid = out('docker', ['exec', '-u', user, C, 'id', '-u']);
  const sshdConfig = `/tmp/claude-vm-${uid}/${ws.id}/ssh/sshd_config`;
  if (spawnSync('docker', ['exec', C, 'test', '-f', sshdConfig]).status !== 0) throw new Error(`${sshdConfig} is not in the container after an ssh connection`);
  const direct = join(WORK, 'ssh_config_direct');
  writeFileSync(direct, [
    'Host direct',
    '  HostName direct',
    `  User ${user}`,
    `  ProxyCommand docker exec -i -u ${user} ${C} /usr/sbin/sshd -i -f ${sshdConfig}`,
    `  IdentityFile ${identity}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${join(WORK, 'known_hosts_direct')}`,
    '  StrictHostKeyChecking accept-new',
    ...(ciphers ? [`  Ciphers ${ciphers}`] : []),
    '',
  ].join('\n'));
  const sshD = ['-F', direct, '-o', 'BatchMode=yes'];
  timed('ssh', [...sshD, 'direct', 'true']);
  const negotiated = (args: string[], host: string) =>
    /kex: server->client cipher: (\S+)/.exec(spawnSync('ssh', [...args, '-v', host, 'true'], { encoding: 'utf8', env }).stderr)?.[1] ?? '?';
  const cipherTunnel = negotiated(ssh, HOST);
  const cipherDirect = negotiated(sshD, 'direct');

  // The payload: random (incompressible) bytes, and a copy in the container to download.
  const file = join(WORK, 'payload.bin');
  const fd = openSync(file, 'w');
  for (let n = 0; n < BYTES; n += 1 << 20) writeSync(fd, randomBytes(Math.min(1 << 20, BYTES - n)));
  closeSync(fd);
  // A directory anyone may write and delete in (the container has no capabilities: its root cannot remove dev's files).
  const DIR = '/tmp/cvm-bench';
  out('docker', ['exec', '-u', user, C, 'mkdir', '-m', '777', DIR]);
  const SRC = `${DIR}/src.bin`;
  out('docker', ['cp', file, `${C}:${SRC}`]);
  const down = join(WORK, 'down.bin');
  const UP = `${DIR}/up.bin`;
  const rmUp = () => out('docker', ['exec', '-u', user, C, 'rm', '-f', UP]);
  const rmDown = () => rmSync(down, { force: true });

  /** Every transfer measured: the command, and what to delete after it. */
  const X = {
    upCp: { cmd: 'docker', args: ['cp', file, `${C}:${UP}`], io: {}, after: rmUp },
    upStream: { cmd: 'docker', args: ['exec', '-i', C, 'sh', '-c', 'cat >/dev/null'], io: { stdin: file }, after: () => {} },
    upDirect: { cmd: 'scp', args: ['-q', ...sshD, file, `direct:${UP}`], io: {}, after: rmUp },
    upDirectChacha: { cmd: 'scp', args: ['-q', ...sshD, '-c', CHACHA, file, `direct:${UP}`], io: {}, after: rmUp },
    upTunnel: { cmd: 'scp', args: ['-q', ...ssh, file, `${HOST}:${UP}`], io: {}, after: rmUp },
    dnCp: { cmd: 'docker', args: ['cp', `${C}:${SRC}`, down], io: {}, after: rmDown },
    dnStream: { cmd: 'docker', args: ['exec', C, 'cat', SRC], io: { stdout: '/dev/null' }, after: () => {} },
    dnDirect: { cmd: 'scp', args: ['-q', ...sshD, `direct:${SRC}`, down], io: {}, after: rmDown },
    dnTunnel: { cmd: 'scp', args: ['-q', ...ssh, `${HOST}:${SRC}`, down], io: {}, after: rmDown },
  };
  type Key = keyof typeof X;
  const keys = Object.keys(X) as Key[];
  const T = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<Key, number[]>;
  const lat = { docker: [] as number[], direct: [] as number[], tunnel: [] as number[], cli: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    lat.docker.push(timed('docker', ['exec', C, 'true']));
    lat.direct.push(timed('ssh', [...sshD, 'direct', 'true']));
    lat.tunnel.push(timed('ssh', [...ssh, HOST, 'true']));
    lat.cli.push(timed(process.execPath, [BIN, '--version']));
    for (const k of keys) {
      T[k].push(timed(X[k].cmd, X[k].args, X[k].io));
      X[k].after();
    }
    process.stderr.write(`run ${i + 1}/${RUNS} done\n`);
  }

  // What bounds each transfer: CPU by process during one more of each (not in the timings above).
  const P = {} as Record<Key, Profile>;
  for (const k of keys) {
    P[k] = await sampled(X[k].cmd, X[k].args, X[k].io, cid, serverPid);
    X[k].after();
  }
  // The ProxyCommand's own start-up (the CLI loading), to tell it from its relaying.
  const cliStart = totalCpu(await sampled(process.execPath, [BIN, '--version'], {}, cid, serverPid));
  const aes = cipherSpeed('aes-128-gcm');
  const chacha = cipherSpeed('chacha20-poly1305');

  // ---------------------------------------------------------------------------------------------- report

  const mbs = (ms: number) => BYTES / 1e6 / (ms / 1000);
  const f0 = (n: number) => n.toFixed(0);
  const f1 = (n: number) => n.toFixed(1);
  const x2 = (n: number) => `${n.toFixed(2)}x`;
  const pad = (s: string, n: number) => s.padEnd(n);
  const lpad = (s: string, n: number) => s.padStart(n);
  const med = (k: Key) => median(T[k]);
  console.log(`${RUNS} runs (median, min), ${MIB} MiB random file; ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), ` +
    `${f0(100 * busyBefore)}% of them busy with other work just before the bench`);
  console.log(`cipher negotiated: tunnel ${cipherTunnel}, direct sshd ${cipherDirect} (our config-ssh entries prefer aes128-gcm: Ciphers ${ciphers ?? '(none)'})`);
  console.log('');
  console.log(`${pad('round trip', 46)}${lpad('median', 9)}${lpad('min', 9)}   vs docker exec   vs direct sshd`);
  const latRow = (what: string, xs: number[], extra = '') =>
    console.log(`  ${pad(what, 44)}${lpad(f0(median(xs)) + ' ms', 9)}${lpad(f0(min(xs)) + ' ms', 9)}   ${lpad(x2(median(xs) / median(lat.docker)), 12)}${extra}`);
  latRow(`docker exec ${C} true`, lat.docker);
  latRow('ssh direct true (same sshd, no tunnel)', lat.direct);
  latRow(`ssh ${HOST} true (tunnel)`, lat.tunnel, lpad(x2(median(lat.tunnel) / median(lat.direct)), 17));
  latRow('claude-vm --version (ProxyCommand start-up)', lat.cli);
  console.log('');
  const xferHead = (title: string) =>
    console.log(`${pad(title, 46)}${lpad('median', 9)}${lpad('min', 9)}${lpad('MB/s', 7)}${lpad('best', 6)}   vs docker cp   vs direct sshd   CPU-s`);
  const xferRow = (what: string, k: Key, cp: Key, dir?: Key) =>
    console.log(`  ${pad(what, 44)}${lpad(f0(med(k)) + ' ms', 9)}${lpad(f0(min(T[k])) + ' ms', 9)}${lpad(f0(mbs(med(k))), 7)}${lpad(f0(mbs(min(T[k]))), 6)}   ` +
      `${lpad(x2(med(cp) / med(k)), 10)}${lpad(dir ? x2(med(dir) / med(k)) : '', 17)}${lpad(f1(totalCpu(P[k])), 8)}`);
  xferHead(`upload ${MIB} MiB (throughput ratios)`);
  xferRow('docker cp file container:', 'upCp', 'upCp');
  xferRow("cat file | docker exec -i … 'cat >/dev/null'", 'upStream', 'upCp');
  xferRow('scp, same sshd without the tunnel', 'upDirect', 'upCp', 'upDirect');
  xferRow('  the same with -c chacha20-poly1305', 'upDirectChacha', 'upCp', 'upDirect');
  xferRow(`scp file ${HOST}: (tunnel)`, 'upTunnel', 'upCp', 'upDirect');
  xferHead(`download ${MIB} MiB`);
  xferRow('docker cp container:file .', 'dnCp', 'dnCp');
  xferRow('docker exec … cat file >/dev/null', 'dnStream', 'dnCp');
  xferRow('scp, same sshd without the tunnel', 'dnDirect', 'dnCp', 'dnDirect');
  xferRow(`scp ${HOST}:file . (tunnel)`, 'dnTunnel', 'dnCp', 'dnDirect');
  console.log('  (CPU-s: CPU seconds all processes involved spent on one more such transfer, sampled from /proc every 25 ms)');
  console.log('');

  const upRatio = med('upCp') / med('upTunnel');
  const dnRatio = med('dnCp') / med('dnTunnel');
  const verdict = (r: number) => (r >= 0.5 ? 'PASS' : 'MISS');
  console.log('goals');
  console.log(`  ssh true round trip: tunnel ${f0(median(lat.tunnel))} ms vs docker exec ${f0(median(lat.docker))} ms = ${x2(median(lat.tunnel) / median(lat.docker))} (reported; no numeric goal)`);
  console.log(`  scp up   ≥ 0.5x docker cp throughput: ${x2(upRatio)}  ${verdict(upRatio)}   (SSH alone, no tunnel: ${x2(med('upCp') / med('upDirect'))} ${verdict(med('upCp') / med('upDirect'))})`);
  console.log(`  scp down ≥ 0.5x docker cp throughput: ${x2(dnRatio)}  ${verdict(dnRatio)}   (SSH alone, no tunnel: ${x2(med('dnCp') / med('dnDirect'))} ${verdict(med('dnCp') / med('dnDirect'))})`);
  console.log('');
  console.log('CPU seconds by process during one more transfer of each kind (≥ 0.05 s):');
  const label: Record<Key, string> = {
    upCp: 'up, docker cp', upStream: 'up, docker exec -i', upDirect: 'up, scp direct', upDirectChacha: 'up, scp direct chacha20',
    upTunnel: 'up, scp tunnel', dnCp: 'down, docker cp', dnStream: 'down, docker exec', dnDirect: 'down, scp direct', dnTunnel: 'down, scp tunnel',
  };
  for (const k of keys) {
    const list = [...P[k].cpu].filter(([, s]) => s >= 0.05).sort((a, b) => b[1] - a[1]).map(([n, s]) => `${n} ${s.toFixed(2)}`);
    console.log(`  ${pad(label[k], 24)}${lpad(f0(mbs(P[k].ms)), 4)} MB/s  total ${totalCpu(P[k]).toFixed(2)}: ${list.join(', ')}`);
  }
  console.log(`OpenSSL on one core, 16 KiB blocks: aes-128-gcm ${f0(aes)} MB/s, chacha20-poly1305 ${f0(chacha)} MB/s ` +
    `(${(BYTES / 1e6 / aes).toFixed(2)} / ${(BYTES / 1e6 / chacha).toFixed(2)} CPU-s per ${MIB} MiB per side)`);

  // The explanation, from the numbers above.
  const sshCpu = (cpuOf(P.upDirect, SSH_PROCS) + cpuOf(P.dnDirect, SSH_PROCS)) / 2;
  const dockerCpu = (totalCpu(P.upCp) + totalCpu(P.dnCp)) / 2;
  const cipherCpu = (2 * BYTES) / 1e6 / aes; // both ends encrypt or decrypt every byte
  const tunnelCpu = (cpuOf(P.upTunnel, TUNNEL_PROCS) + cpuOf(P.dnTunnel, TUNNEL_PROCS)) / 2;
  console.log('');
  console.log(
    `why: scp is bound by SSH's encryption layer on this ${cpus().length}-CPU machine (${f0(100 * busyBefore)}% busy before we started), not by the tunnel alone: ` +
      `without any tunnel the same sshd moves ${f0(mbs(med('upDirect')))} MB/s up / ${f0(mbs(med('dnDirect')))} MB/s down = ` +
      `${x2(med('upCp') / med('upDirect'))} / ${x2(med('dnCp') / med('dnDirect'))} docker cp, because ssh+sshd spend ${sshCpu.toFixed(2)} CPU-s per ${MIB} MiB ` +
      `(the SSH transport: cipher, packets, MACs, copies) against ${dockerCpu.toFixed(2)} CPU-s for everything docker cp does. ` +
      `The AES-GCM math itself is only ~${cipherCpu.toFixed(2)} CPU-s of it (${f0(aes)} MB/s per core with AES-NI, which is why config-ssh prefers aes128-gcm); ` +
      `ChaCha20 (${(aes / chacha).toFixed(1)}x slower in OpenSSL) costs ${(totalCpu(P.upDirectChacha) - totalCpu(P.upDirect)).toFixed(2)} CPU-s more ` +
      `and moves ${f0(mbs(med('upDirectChacha')))} MB/s. The tunnel adds ${tunnelCpu.toFixed(2)} CPU-s (ProxyCommand — ${cliStart.toFixed(2)} of it the CLI's start-up — ` +
      `control plane, daemon) and keeps ${x2(med('upDirect') / med('upTunnel'))} up / ${x2(med('dnDirect') / med('dnTunnel'))} down of SSH's own throughput.`,
  );
} finally {
  cleanUp();
}
