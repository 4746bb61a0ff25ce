/** @module Runs the real claude-vm binary against a private $CLAUDE_VM_HOME, as a user would. */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = join(REPO, 'bin', 'claude-vm.js');

/** The workspace image the suite shares; scripts/run-tests.mjs builds it once per run. */
export const IMAGE = process.env.CLAUDE_VM_TEST_IMAGE || 'claude-vm/workspace:latest';
/** A small foreign image (no claude-vm label) to exercise the bootstrap path. */
export const FOREIGN_IMAGE = process.env.CLAUDE_VM_TEST_FOREIGN_IMAGE || 'claude-vm/base:bookworm-node24';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  input?: string;
  env?: Record<string, string>;
}

/** Homes whose local control plane this test process may have started; stopped when the process exits. */
const homes = new Set<string>();
process.once('exit', () => {
  for (const home of homes) stopLocalServer(home);
});

/** Stops the control plane the CLI started for a home (it runs detached, so it would outlive the test). */
export function stopLocalServer(home: string): void {
  try {
    const { pid } = JSON.parse(readFileSync(join(home, 'server.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGKILL');
  } catch {
    // Never started, or already gone.
  }
}

export class Cli {
  readonly home: string;

  constructor(readonly env: Record<string, string> = {}) {
    this.home = mkdtempSync(join(tmpdir(), 'cvm-home-'));
    homes.add(this.home);
  }

  /** Runs claude-vm; a command still running after `timeoutMs` is killed and reported, so a hang fails one test, not CI. */
  run(args: string[], opts: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
    return new Promise((resolvePromise) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: opts.cwd ?? REPO,
        env: { ...process.env, CLAUDE_VM_HOME: this.home, ...this.env, ...opts.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.stdin.end(opts.input ?? '');
      const timer = setTimeout(() => {
        stderr += `\n[test harness: claude-vm ${args.join(' ')} killed after ${opts.timeoutMs ?? 180_000} ms]`;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 180_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolvePromise({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  /** Runs and insists on success, so a failing step reports its own stderr instead of a later confusing assertion. */
  async ok(args: string[], opts: CliOptions = {}): Promise<CliResult> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`claude-vm ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse((await this.ok([...args, '--json'])).stdout) as T;
  }
}

/** A small git repository with a tracked file, an untracked file and an ignored node_modules. */
export function makeGitRepo(name = 'demo'): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'cvm-src-')), name);
  mkdirSync(join(dir, 'node_modules', 'left-pad'), { recursive: true });
  writeFileSync(join(dir, 'README.md'), '# demo\n');
  writeFileSync(join(dir, '.gitignore'), 'node_modules/\n');
  const git = (...a: string[]) => spawnSync('git', ['-C', dir, ...a], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-qm', 'init');
  writeFileSync(join(dir, 'untracked.txt'), 'not in git\n');
  writeFileSync(join(dir, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 1;\n');
  return dir;
}

export function docker(...args: string[]): { code: number; out: string } {
  const r = spawnSync('docker', args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: (r.stdout + r.stderr).trim() };
}

/** Names of claude-vm containers/volumes for one workspace id, as Docker itself reports them. */
export function dockerResources(id: string): { containers: string[]; volumes: string[] } {
  const lines = (s: string) => s.split('\n').filter(Boolean);
  return {
    containers: lines(docker('ps', '-a', '--filter', `label=dev.claude-vm.workspace=${id}`, '--format', '{{.Names}}').out),
    volumes: lines(docker('volume', 'ls', '--filter', `name=claude-vm-${id}`, '--format', '{{.Name}}').out),
  };
}

/** Everything Docker holds for one state store: what a failed command must not leave behind. */
export function resourcesOf(cli: Cli): string[] {
  const label = `label=dev.claude-vm.owner=${createHash('sha256').update(cli.home).digest('hex').slice(0, 12)}`;
  const lines = (s: string) => s.split('\n').filter(Boolean);
  return [
    ...lines(docker('ps', '-a', '--filter', label, '--format', 'container {{.Names}}').out),
    ...lines(docker('volume', 'ls', '--filter', label, '--format', 'volume {{.Name}}').out),
  ];
}
