/**
 * Editor access with the real OpenSSH client: every workspace is an SSH host (`<id>.claude-vm`, `<name>.claude-vm`)
 * reached through the control plane and the workspace's tunnel. ssh, scp, sftp, rsync, port forwarding, the host
 * key across down/up, the user's ssh config left intact, two-way sync with unison, and refusals.
 * Every ssh config here is in a temporary directory; the real ~/.ssh is never read or written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Cli, IMAGE, BIN, makeGitRepo } from './support/cli.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

const LONG = { timeout: 600_000 };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  out: Buffer;
}

/** Runs a program to the end (killed after `timeoutMs`, so a hang fails one test and says so). */
function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      stderr += `\n[test harness: ${cmd} ${args.join(' ')} killed after ${opts.timeoutMs ?? 180_000} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const buf = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: buf.toString(), stderr, out: buf });
    });
  });
}

/** The real OpenSSH client with only our config file (BatchMode: a refused key fails instead of asking for a password). */
function ssh(cfg: string, host: string, args: string[], opts: { input?: string | Buffer; tty?: boolean } = {}): Promise<Run> {
  return run('ssh', ['-F', cfg, '-o', 'BatchMode=yes', ...(opts.tty ? ['-tt'] : []), host, ...args], opts);
}

function describe(r: Run): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

async function sshOk(cfg: string, host: string, args: string[], opts: { input?: string | Buffer } = {}): Promise<Run> {
  const r = await ssh(cfg, host, args, opts);
  assert.equal(r.code, 0, `ssh ${host} ${args.join(' ')}: ${describe(r)}`);
  return r;
}

async function up(cli: Cli, repo: string, name?: string): Promise<WorkspaceInfo> {
  const r = await cli.ok(['workspace', 'up', repo, '--image', IMAGE, ...(name ? ['--name', name] : []), '--json']);
  return JSON.parse(r.stdout) as WorkspaceInfo;
}

function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function until<T>(what: string, check: () => Promise<T | undefined>, explain: () => string = () => '', timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last error: ${String(last)})\n${explain()}`);
}

/** GET through a local forwarded port; undefined until it answers 200. */
async function fetchText(port: number, path: string): Promise<string | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return res.status === 200 ? await res.text() : undefined;
}

/** A long-running process (ssh -N -L, port-forward) whose output is kept for assertions. */
class Background {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout.on('data', (d: Buffer) => (this.stdout += d));
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d));
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Every file under a directory, path → contents (for comparing trees). */
function tree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return files;
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('error:'));
}

async function configSsh(cli: Cli, cfg: string): Promise<string> {
  await cli.ok(['config-ssh', '--ssh-config', cfg]);
  return readFileSync(cfg, 'utf8');
}

async function cleanup(cli: Cli, ...ids: string[]): Promise<void> {
  for (const id of ids) await cli.run(['workspace', 'delete', id, '--purge', '-y']);
}

test('config-ssh makes a workspace an SSH host by id and by name: user dev, project directory, exit codes and stdin pass', LONG, async () => {
  const cli = new Cli();
  const ws = await up(cli, makeGitRepo('app'), 'app');
  const cfg = join(scratch('cvm-sshcfg-'), 'config');
  try {
    const wrote = await cli.ok(['config-ssh', '--ssh-config', cfg]);
    assert.match(wrote.stdout, new RegExp(`ssh ${ws.id}\\.claude-vm +\\(or app\\.claude-vm\\) +running`));
    const text = readFileSync(cfg, 'utf8');
    assert.equal(statSync(cfg).mode & 0o777, 0o600, 'a new ssh config is private');
    assert.match(text, new RegExp(`^Host ${ws.id}\\.claude-vm app\\.claude-vm$`, 'm'));
    assert.match(text, new RegExp(`^ {2}ProxyCommand env CLAUDE_VM_HOME=${cli.home} \\S+ \\S+claude-vm\\.js ssh --stdio ${ws.id}$`, 'm'));
    assert.match(text, new RegExp(`^ {2}IdentityFile ${cli.home}/ssh/id_ed25519$`, 'm'));
    assert.match(text, new RegExp(`^ {2}UserKnownHostsFile ${cli.home}/ssh/known_hosts$`, 'm'));
    assert.match(text, /^ {2}StrictHostKeyChecking yes$/m);
    assert.match(text, /^ {2}User dev$/m);
    assert.equal(statSync(join(cli.home, 'ssh', 'id_ed25519')).mode & 0o777, 0o600, 'the private key is private');

    const byId = await sshOk(cfg, `${ws.id}.claude-vm`, ['id -un; echo $CLAUDE_VM_PROJECT_DIR']);
    assert.equal(byId.stdout, 'dev\n/workspace/app\n');
    const byName = await sshOk(cfg, 'app.claude-vm', ['id -un; echo $CLAUDE_VM_PROJECT_DIR']);
    assert.equal(byName.stdout, 'dev\n/workspace/app\n');

    // /etc/profile.d/claude-vm.sh: a login shell that starts in $HOME moves to the project directory.
    assert.equal((await sshOk(cfg, 'app.claude-vm', ['bash -l -c pwd'])).stdout, '/workspace/app\n');
    // An interactive login with a terminal, as a person (or an editor's terminal) gets one.
    const login = await ssh(cfg, 'app.claude-vm', [], { tty: true, input: 'echo "WHERE=$(pwd) WHO=$(id -un)"\nexit 3\n' });
    assert.equal(login.code, 3, describe(login));
    assert.match(login.stdout, /WHERE=\/workspace\/app WHO=dev/);

    // The remote command's exit code, stdin, stdout and stderr pass through unchanged.
    assert.equal((await ssh(cfg, 'app.claude-vm', ['exit 7'])).code, 7);
    assert.equal((await sshOk(cfg, 'app.claude-vm', ['cat'], { input: 'hi\n' })).stdout, 'hi\n');
    const err = await ssh(cfg, 'app.claude-vm', ['echo out; echo oops >&2; exit 4']);
    assert.equal(err.code, 4);
    assert.equal(err.stdout, 'out\n');
    assert.match(err.stderr, /oops/);
    const blob = randomBytes(3 * 1024 * 1024);
    const echoed = await sshOk(cfg, 'app.claude-vm', ['cat'], { input: blob });
    assert.ok(echoed.out.equals(blob), `3 MB of binary stdin came back changed (${echoed.out.length} bytes)`);

    // The project is the one copied in, and the shell user owns it.
    assert.equal((await sshOk(cfg, 'app.claude-vm', ['cd $CLAUDE_VM_PROJECT_DIR && cat README.md && stat -c %U README.md'])).stdout, '# demo\ndev\n');
  } finally {
    await cleanup(cli, ws.id);
  }
});

test('files move both ways with scp, sftp and rsync', LONG, async () => {
  const cli = new Cli();
  const ws = await up(cli, makeGitRepo('files'), 'files');
  const dir = scratch('cvm-sshfiles-');
  const cfg = join(dir, 'config');
  const host = 'files.claude-vm';
  try {
    await configSsh(cli, cfg);

    // scp: 5 MB of random bytes up and back down.
    const big = randomBytes(5 * 1024 * 1024);
    writeFileSync(join(dir, 'big.bin'), big);
    const upload = await run('scp', ['-F', cfg, '-o', 'BatchMode=yes', join(dir, 'big.bin'), `${host}:/workspace/files/big.bin`]);
    assert.equal(upload.code, 0, describe(upload));
    const size = await sshOk(cfg, host, ['stat -c %s /workspace/files/big.bin']);
    assert.equal(size.stdout.trim(), String(big.length));
    const download = await run('scp', ['-F', cfg, '-o', 'BatchMode=yes', `${host}:/workspace/files/big.bin`, join(dir, 'back.bin')]);
    assert.equal(download.code, 0, describe(download));
    assert.ok(readFileSync(join(dir, 'back.bin')).equals(big), 'the file that came back is not the one sent');
    // The workspace side agrees with the bytes (not just a round trip that undoes its own damage).
    const sum = await sshOk(cfg, host, ['sha256sum /workspace/files/big.bin']);
    assert.equal(sum.stdout.split(' ')[0], createHash('sha256').update(big).digest('hex'));

    // sftp: list the project, fetch a file, put one.
    writeFileSync(join(dir, 'put.txt'), 'via sftp\n');
    const batch = join(dir, 'batch');
    writeFileSync(batch, `ls -1 /workspace/files\nget /workspace/files/README.md ${join(dir, 'readme-from-sftp')}\nput ${join(dir, 'put.txt')} /workspace/files/put.txt\n`);
    const sftp = await run('sftp', ['-F', cfg, '-o', 'BatchMode=yes', '-b', batch, host]);
    assert.equal(sftp.code, 0, describe(sftp));
    assert.match(sftp.stdout, /README\.md/);
    assert.match(sftp.stdout, /untracked\.txt/);
    assert.equal(readFileSync(join(dir, 'readme-from-sftp'), 'utf8'), '# demo\n');
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'put.txt'])).stdout, 'via sftp\n');

    // rsync: a small tree up, then down into an empty directory; the same files and contents.
    const src = join(dir, 'tree');
    mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'a\n');
    writeFileSync(join(src, 'with space.txt'), 'spaced\n');
    writeFileSync(join(src, 'sub', 'b.txt'), 'b\n');
    writeFileSync(join(src, 'sub', 'deeper', 'c.txt'), 'c'.repeat(100_000));
    const rsh = `ssh -F ${cfg} -o BatchMode=yes`;
    const rUp = await run('rsync', ['-a', '-e', rsh, `${src}/`, `${host}:/workspace/files/tree/`]);
    assert.equal(rUp.code, 0, describe(rUp));
    assert.equal((await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'cat "tree/with space.txt" tree/sub/b.txt; wc -c < tree/sub/deeper/c.txt'])).stdout, 'spaced\nb\n100000\n');
    await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'echo made-remote > tree/sub/remote.txt']);
    const dst = join(dir, 'tree-back');
    const rDown = await run('rsync', ['-a', '-e', rsh, `${host}:/workspace/files/tree/`, `${dst}/`]);
    assert.equal(rDown.code, 0, describe(rDown));
    assert.deepEqual(tree(dst), { ...tree(src), [join('sub', 'remote.txt')]: 'made-remote\n' });
  } finally {
    await cleanup(cli, ws.id);
  }
});

test('a port in the workspace is reachable through ssh -L and through claude-vm port-forward', LONG, async () => {
  const cli = new Cli();
  const ws = await up(cli, makeGitRepo('web'), 'web');
  const cfg = join(scratch('cvm-sshport-'), 'config');
  const bg: Background[] = [];
  try {
    await configSsh(cli, cfg);
    await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'mkdir -p /tmp/www && echo served-from-workspace > /tmp/www/hello.txt && cd /tmp/www && setsid python3 -m http.server 8000 --bind 127.0.0.1 > /tmp/http.log 2>&1 < /dev/null &']);

    // OpenSSH's own forwarding, over the claude-vm SSH connection.
    const viaSsh = await freePort();
    const tunnel = new Background('ssh', ['-F', cfg, '-o', 'BatchMode=yes', '-o', 'ExitOnForwardFailure=yes', '-N', '-L', `${viaSsh}:127.0.0.1:8000`, 'web.claude-vm']);
    bg.push(tunnel);
    const body = await until('GET through ssh -L', () => fetchText(viaSsh, '/hello.txt'), () => `ssh: ${tunnel.stderr}`);
    assert.equal(body, 'served-from-workspace\n');
    await tunnel.stop();

    // claude-vm port-forward: no ssh involved, a stream per connection through the tunnel; two ports at once, one
    // of which has nothing listening in the workspace.
    const local = await freePort();
    const dead = await freePort();
    const pf = new Background(process.execPath, [BIN, 'port-forward', ws.id, `${local}:8000`, `${dead}:8999`], { CLAUDE_VM_HOME: cli.home });
    bg.push(pf);
    await until('port-forward listening', async () => (pf.stdout.includes(`127.0.0.1:${dead} -> ${ws.id}:8999`) ? true : undefined), () => `stdout: ${pf.stdout}\nstderr: ${pf.stderr}`);
    assert.match(pf.stdout, new RegExp(`Forwarding 127\\.0\\.0\\.1:${local} -> ${ws.id}:8000`));
    assert.equal(await until('GET through port-forward', () => fetchText(local, '/hello.txt'), () => pf.stderr), 'served-from-workspace\n');
    // Several connections, one after another and at once.
    const many = await Promise.all(Array.from({ length: 8 }, () => fetchText(local, '/hello.txt')));
    assert.deepEqual(many, Array(8).fill('served-from-workspace\n'));
    await assert.rejects(fetch(`http://127.0.0.1:${dead}/`, { signal: AbortSignal.timeout(30_000) }), 'a port with nothing behind it closes the connection');
    await until('port-forward explains the refused port', async () => (/nothing listens on port 8999/.test(pf.stderr) ? true : undefined), () => pf.stderr);
    assert.equal(pf.child.exitCode, null, 'a refused connection does not end port-forward');
    await pf.stop();

    const bad = await cli.run(['port-forward', ws.id, '99999']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: Invalid port "99999"/m);
  } finally {
    for (const b of bg) await b.stop();
    await cleanup(cli, ws.id);
  }
});

test('the host key stays the same across workspace down/up; a stopped workspace says so', LONG, async () => {
  const cli = new Cli();
  const ws = await up(cli, makeGitRepo('keep'), 'keep');
  const cfg = join(scratch('cvm-sshkey-'), 'config');
  const knownHosts = join(cli.home, 'ssh', 'known_hosts');
  try {
    await configSsh(cli, cfg);
    const before = readFileSync(knownHosts, 'utf8');
    assert.match(before, new RegExp(`^${ws.id}\\.claude-vm,keep\\.claude-vm ssh-ed25519 \\S+`));
    assert.equal((await sshOk(cfg, 'keep.claude-vm', ['echo first'])).stdout, 'first\n');

    await cli.ok(['workspace', 'down', ws.id]);
    const refused = await ssh(cfg, 'keep.claude-vm', ['true']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`Workspace ${ws.id} is stopped`), 'ssh shows why (the ProxyCommand says so)');
    const stdio = await cli.run(['ssh', ws.id, '--stdio']);
    assert.equal(stdio.code, 1, describe({ ...stdio, out: Buffer.from(stdio.stdout) }));
    assert.equal(stdio.stdout, '', 'nothing but SSH protocol goes to stdout');
    assert.deepEqual(errorLines(stdio.stderr), [`error: Workspace ${ws.id} is stopped.`]);
    assert.match(stdio.stderr, /hint: Start it with `claude-vm workspace up/);
    // By host name as ssh passes it, too.
    const byHost = await cli.run(['ssh', 'keep.claude-vm', '--stdio']);
    assert.equal(byHost.code, 1);
    assert.match(byHost.stderr, /is stopped/);

    await cli.ok(['workspace', 'up', ws.id]);
    // StrictHostKeyChecking yes and no new config-ssh: the same host key is presented.
    const again = await ssh(cfg, 'keep.claude-vm', ['echo again']);
    assert.equal(again.code, 0, describe(again));
    assert.equal(again.stdout, 'again\n');
    assert.doesNotMatch(again.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
    await configSsh(cli, cfg);
    assert.equal(readFileSync(knownHosts, 'utf8'), before, 'config-ssh after up writes the same known_hosts line');
  } finally {
    await cleanup(cli, ws.id);
  }
});

test("config-ssh keeps the user's own ssh config: idempotent, in place, and --remove restores it byte-for-byte", LONG, async () => {
  const cli = new Cli();
  const dir = scratch('cvm-sshuser-');
  const cfg = join(dir, 'config');
  // The user's file: their own host, no newline at the end, readable by others (0644).
  const original = '# my hosts\nHost other\n  HostName 127.0.0.1\n  User nobody';
  writeFileSync(cfg, original);
  chmodSync(cfg, 0o644);
  const ids: string[] = [];
  try {
    const empty = await cli.ok(['config-ssh', '--ssh-config', cfg]);
    assert.match(empty.stdout, /No workspaces yet/);
    const emptyText = readFileSync(cfg, 'utf8');
    assert.ok(emptyText.startsWith(`${original}\n# ------------START-CLAUDE-VM`), emptyText);
    assert.doesNotMatch(emptyText, /^Host .*claude-vm/m);

    const a = await up(cli, makeGitRepo('alpha'), 'alpha');
    ids.push(a.id);
    const b = await up(cli, makeGitRepo('beta'), 'beta');
    ids.push(b.id);
    const once = await configSsh(cli, cfg);
    assert.ok(once.startsWith(`${original}\n`), 'the user part is untouched');
    assert.match(once, new RegExp(`^Host ${a.id}\\.claude-vm alpha\\.claude-vm$`, 'm'));
    assert.match(once, new RegExp(`^Host ${b.id}\\.claude-vm beta\\.claude-vm$`, 'm'));
    assert.equal((once.match(/START-CLAUDE-VM/g) ?? []).length, 1);
    assert.equal(statSync(cfg).mode & 0o777, 0o644, "the file's mode is kept");
    const twice = await configSsh(cli, cfg);
    assert.equal(twice, once, 'a second run leaves the file byte-identical');
    assert.deepEqual(readdirSync(dir), ['config'], 'no temporary file is left next to it');

    // The combined file works for ssh, to each workspace, and each workspace has its own host key.
    assert.equal((await sshOk(cfg, 'alpha.claude-vm', ['echo $CLAUDE_VM_PROJECT_DIR'])).stdout, '/workspace/alpha\n');
    assert.equal((await sshOk(cfg, `${b.id}.claude-vm`, ['echo $CLAUDE_VM_PROJECT_DIR'])).stdout, '/workspace/beta\n');
    const keys = readFileSync(join(cli.home, 'ssh', 'known_hosts'), 'utf8').trim().split('\n').map((l) => l.split(' ').slice(1).join(' '));
    assert.equal(keys.length, 2);
    assert.notEqual(keys[0], keys[1], 'two workspaces, two host keys');

    const hosts = await cli.json<Array<{ workspaceId: string; host: string; name: string | null; user: string; projectDir: string }>>(['config-ssh', '--ssh-config', cfg]);
    assert.deepEqual(
      hosts.map((h) => [h.host, h.name, h.user, h.projectDir]).sort(),
      [[`${a.id}.claude-vm`, 'alpha', 'dev', '/workspace/alpha'], [`${b.id}.claude-vm`, 'beta', 'dev', '/workspace/beta']].sort(),
    );
    assert.equal(readFileSync(cfg, 'utf8'), once, '--json writes the same file');

    // A deleted workspace drops out at the next run.
    await cli.ok(['workspace', 'delete', b.id, '--purge', '-y']);
    const fewer = await configSsh(cli, cfg);
    assert.ok(fewer.startsWith(`${original}\n`));
    assert.doesNotMatch(fewer, new RegExp(b.id));
    assert.match(fewer, new RegExp(`^Host ${a.id}\\.claude-vm alpha\\.claude-vm$`, 'm'));

    const removed = await cli.ok(['config-ssh', '--remove', '--ssh-config', cfg]);
    assert.match(removed.stdout, /Removed the claude-vm hosts/);
    assert.ok(readFileSync(cfg).equals(Buffer.from(original)), `--remove must restore the file exactly: ${JSON.stringify(readFileSync(cfg, 'utf8'))}`);
    assert.equal(statSync(cfg).mode & 0o777, 0o644);
    const noop = await cli.ok(['config-ssh', '--remove', '--ssh-config', cfg]);
    assert.match(noop.stdout, /has no claude-vm hosts/);
    assert.ok(readFileSync(cfg).equals(Buffer.from(original)));
  } finally {
    await cleanup(cli, ...ids);
  }
});

test('sync keeps a local folder and the project in step over SSH; a conflict overwrites neither side', LONG, async (t) => {
  const cli = new Cli();
  const ws = await up(cli, makeGitRepo('synced'), 'synced');
  const local = join(scratch('cvm-sync-'), 'synced-local');
  const sync = () => cli.run(['sync', ws.id, local, '--once'], { timeoutMs: 300_000 });
  const wsCat = async (path: string) => (await cli.run(['exec', ws.id, '--', 'cat', path])).stdout;
  let first: Awaited<ReturnType<typeof sync>> | undefined;
  try {
    await t.test('the first pass brings the project files down', async () => {
      first = await sync();
      assert.equal(readFileSync(join(local, 'README.md'), 'utf8'), '# demo\n', describe({ ...first, out: Buffer.alloc(0) }));
      assert.equal(readFileSync(join(local, 'untracked.txt'), 'utf8'), 'not in git\n');
      assert.equal(readFileSync(join(local, '.gitignore'), 'utf8'), 'node_modules/\n');
      assert.ok(!existsSync(join(local, '.git')), '.git is never synced');
    });

    await t.test('the first pass into an empty folder succeeds (exit 0, no conflict reported)', () => {
      assert.ok(first);
      assert.equal(first.code, 0, `first sync: ${describe({ ...first, out: Buffer.alloc(0) })}`);
      assert.doesNotMatch(first.stderr, /both sides changed/);
    });

    await t.test('.gitignored paths (node_modules) are not synced down', () => {
      assert.ok(!existsSync(join(local, 'node_modules')), `node_modules came down: ${JSON.stringify(existsSync(join(local, 'node_modules')) ? tree(join(local, 'node_modules')) : {})}`);
    });

    await t.test('a local edit goes up', async () => {
      writeFileSync(join(local, 'from-local.txt'), 'written locally\n');
      writeFileSync(join(local, 'untracked.txt'), 'edited locally, longer than before\n');
      const r = await sync();
      assert.equal(r.code, 0, describe({ ...r, out: Buffer.alloc(0) }));
      assert.equal(await wsCat('from-local.txt'), 'written locally\n');
      assert.equal(await wsCat('untracked.txt'), 'edited locally, longer than before\n');
    });

    await t.test('an edit and a delete in the workspace come down', async () => {
      await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'echo written in workspace > from-ws.txt && rm from-local.txt && mkdir -p src && echo nested > src/n.txt']);
      const r = await sync();
      assert.equal(r.code, 0, describe({ ...r, out: Buffer.alloc(0) }));
      assert.equal(readFileSync(join(local, 'from-ws.txt'), 'utf8'), 'written in workspace\n');
      assert.equal(readFileSync(join(local, 'src', 'n.txt'), 'utf8'), 'nested\n');
      assert.ok(!existsSync(join(local, 'from-local.txt')), 'the delete in the workspace came down');
    });

    await t.test('ignored paths stay on their own side once .gitignore is there', async () => {
      await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'mkdir -p node_modules/late && echo x > node_modules/late/f']);
      mkdirSync(join(local, 'node_modules', 'local-only'), { recursive: true });
      writeFileSync(join(local, 'node_modules', 'local-only', 'f'), 'y\n');
      const r = await sync();
      assert.equal(r.code, 0, describe({ ...r, out: Buffer.alloc(0) }));
      assert.ok(!existsSync(join(local, 'node_modules', 'late')), 'an ignored path came down');
      assert.equal((await cli.run(['exec', ws.id, '--', 'test', '-e', 'node_modules/local-only'])).code, 1, 'an ignored path went up');
    });

    await t.test('the same file edited on both sides: non-zero exit, a conflict reported, both versions kept', async () => {
      writeFileSync(join(local, 'README.md'), 'the local version\n');
      await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'echo "the workspace version, a different length" > README.md']);
      // A change elsewhere in the same pass still goes through.
      writeFileSync(join(local, 'also.txt'), 'unrelated\n');
      const r = await sync();
      assert.notEqual(r.code, 0, describe({ ...r, out: Buffer.alloc(0) }));
      assert.match(r.stderr, /README\.md/);
      assert.match(r.stderr, /both sides changed/);
      assert.equal(errorLines(r.stderr).length, 1, r.stderr);
      assert.equal(readFileSync(join(local, 'README.md'), 'utf8'), 'the local version\n', 'the local side was overwritten');
      assert.equal(await wsCat('README.md'), 'the workspace version, a different length\n', 'the workspace side was overwritten');
      assert.equal(await wsCat('also.txt'), 'unrelated\n');
      // Still a conflict on the next pass: nothing was silently resolved.
      const again = await sync();
      assert.notEqual(again.code, 0);
      assert.equal(readFileSync(join(local, 'README.md'), 'utf8'), 'the local version\n');
      assert.equal(await wsCat('README.md'), 'the workspace version, a different length\n');
    });
  } finally {
    await cleanup(cli, ws.id);
  }
});

test('refusals: an unknown workspace, a removed key (Permission denied) until config-ssh adds it back, no key at all', LONG, async () => {
  const cli = new Cli();
  const nope = await cli.run(['ssh', 'nope', '--stdio']);
  assert.equal(nope.code, 1, `${nope.stdout}\n${nope.stderr}`);
  assert.equal(nope.stdout, '');
  assert.deepEqual(errorLines(nope.stderr), ['error: No workspace matches "nope".']);

  const ws = await up(cli, makeGitRepo('locked'), 'locked');
  const dir = scratch('cvm-sshdeny-');
  const cfg = join(dir, 'config');
  try {
    await configSsh(cli, cfg);
    await sshOk(cfg, 'locked.claude-vm', ['true']);

    // A second key of the user's, made with ssh-keygen and added by file.
    const other = join(dir, 'other');
    const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'other@test', '-f', other], { encoding: 'utf8' });
    assert.equal(keygen.status, 0, keygen.stderr);
    const added = await cli.ok(['ssh-key', 'add', `${other}.pub`, '--name', 'other']);
    assert.match(added.stdout, /^Added SHA256:\S+ \(other\)\.$/m);

    type Key = { id: string; name: string; publicKey: string; fingerprint: string };
    const ours = readFileSync(join(cli.home, 'ssh', 'id_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const keys = await cli.json<Key[]>(['ssh-key', 'list']);
    assert.equal(keys.length, 2);
    const mine = keys.find((k) => k.publicKey.startsWith(ours));
    assert.ok(mine, `the CLI's key is on the account: ${JSON.stringify(keys)}`);

    // Removed by fingerprint: the next connection is refused by sshd, the other key still gets in.
    const removed = await cli.ok(['ssh-key', 'remove', mine.fingerprint]);
    assert.match(removed.stdout, /Removed/);
    const denied = await ssh(cfg, 'locked.claude-vm', ['true']);
    assert.equal(denied.code, 255, describe(denied));
    assert.match(denied.stderr, /Permission denied \(publickey\)/);
    const otherIn = await run('ssh', ['-F', cfg, '-o', 'BatchMode=yes', '-i', other, 'locked.claude-vm', 'id -un']);
    assert.equal(otherIn.code, 0, describe(otherIn));
    assert.equal(otherIn.stdout, 'dev\n');

    // config-ssh adds the CLI's key back; ssh works again without touching the ssh config.
    await configSsh(cli, cfg);
    assert.equal((await sshOk(cfg, 'locked.claude-vm', ['echo back'])).stdout, 'back\n');
    assert.equal((await cli.json<Key[]>(['ssh-key', 'list'])).length, 2);

    // No key at all (removed by id): the control plane refuses before sshd, and says what to do.
    for (const k of await cli.json<Key[]>(['ssh-key', 'list'])) await cli.ok(['ssh-key', 'remove', k.id]);
    const none = await ssh(cfg, 'locked.claude-vm', ['true']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /error: You have no SSH key on the control plane/);
    assert.match(none.stderr, /claude-vm config-ssh/);

    const unknown = await cli.run(['ssh-key', 'remove', 'key_nope']);
    assert.equal(unknown.code, 1);
    assert.deepEqual(errorLines(unknown.stderr), ['error: No SSH key key_nope.']);

    await configSsh(cli, cfg);
    assert.equal((await sshOk(cfg, 'locked.claude-vm', ['echo fixed'])).stdout, 'fixed\n');
  } finally {
    await cleanup(cli, ws.id);
  }
});
