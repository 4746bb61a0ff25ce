/**
 * @module What changed in the workspace since it began, and committing it. For a git project the base is the
 * commit checked out when the workspace was made (recorded then); a project that is not a git repository gets a
 * baseline repository of its own under the daemon's directory, so its changes can be shown the same way.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const MAX_DIFF = 2 * 1024 * 1024;

export interface Changes {
  base: string | null;
  files: Array<{ path: string; status: 'modified' | 'added' | 'deleted' | 'untracked' }>;
  diff: string;
  truncated: boolean;
}

function git(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, env: { ...process.env, ...env, GIT_TERMINAL_PROMPT: '0' }, maxBuffer: 64 * 1024 * 1024 }, (e, out, err) => {
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: String(out), err: String(err) });
    });
  });
}

export class WorkspaceGit {
  constructor(
    private readonly projectDir: string,
    /** The daemon's own directory (off-limits to file APIs): holds the base record and a non-git project's baseline. */
    private readonly root: string,
  ) {}

  private get baseFile(): string {
    return join(this.root, 'git-base');
  }

  private get baselineDir(): string {
    return join(this.root, 'baseline.git');
  }

  /** Records where the workspace began; called once, on the first question (a later call keeps the first base). */
  async ensureBase(): Promise<{ kind: 'git'; commit: string | null } | { kind: 'baseline' }> {
    if (existsSync(join(this.projectDir, '.git'))) {
      if (!existsSync(this.baseFile)) {
        const head = await git(['rev-parse', 'HEAD'], this.projectDir);
        writeFileSync(this.baseFile, head.code === 0 ? head.out.trim() : '');
      }
      return { kind: 'git', commit: readFileSync(this.baseFile, 'utf8').trim() || null };
    }
    if (!existsSync(this.baselineDir)) {
      mkdirSync(this.baselineDir, { recursive: true });
      const env = this.baselineEnv();
      await git(['init', '-q', '--bare', this.baselineDir], this.projectDir);
      await git(['add', '-A'], this.projectDir, env);
      await git(['-c', 'user.name=claude-vm', '-c', 'user.email=claude-vm@localhost', 'commit', '-q', '--allow-empty', '-m', 'workspace began'], this.projectDir, env);
    }
    return { kind: 'baseline' };
  }

  private baselineEnv(): Record<string, string> {
    return { GIT_DIR: this.baselineDir, GIT_WORK_TREE: this.projectDir };
  }

  async changes(): Promise<Changes> {
    const base = await this.ensureBase();
    const env = base.kind === 'baseline' ? this.baselineEnv() : {};
    const against = base.kind === 'git' ? (base.commit ?? '4b825dc642cb6eb9a060e54bf8d69288fbee4904') : 'HEAD';
    const names = await git(['diff', '--name-status', '--no-renames', against, '--'], this.projectDir, env);
    const untracked = await git(['ls-files', '--others', '--exclude-standard'], this.projectDir, env);
    const files: Changes['files'] = [];
    for (const line of names.out.split('\n').filter(Boolean)) {
      const [code, ...rest] = line.split('\t');
      files.push({ path: rest.join('\t'), status: code === 'A' ? 'added' : code === 'D' ? 'deleted' : 'modified' });
    }
    for (const path of untracked.out.split('\n').filter(Boolean)) files.push({ path, status: 'untracked' });
    let diff = (await git(['diff', '--no-renames', against, '--'], this.projectDir, env)).out;
    // Untracked files as additions, so the diff shows everything the agent made.
    for (const f of files.filter((x) => x.status === 'untracked')) {
      if (diff.length > MAX_DIFF) break;
      diff += (await git(['diff', '--no-index', '--', '/dev/null', f.path], this.projectDir)).out;
    }
    const truncated = diff.length > MAX_DIFF;
    return { base: base.kind === 'git' ? base.commit : 'workspace began', files, diff: truncated ? diff.slice(0, MAX_DIFF) : diff, truncated };
  }

  async commit(message: string, push: boolean): Promise<{ commit: string; pushed: boolean; output: string }> {
    if (!existsSync(join(this.projectDir, '.git'))) throw Object.assign(new Error('The project is not a git repository.'), { code: 'wrong_state' });
    if (!message.trim()) throw Object.assign(new Error('The commit message is empty.'), { code: 'invalid_argument' });
    await git(['add', '-A'], this.projectDir);
    // The workspace's own git identity if it has one; a neutral one only to fill the gap.
    const configured = (await git(['config', 'user.email'], this.projectDir)).out.trim();
    const identity = configured ? [] : ['-c', 'user.name=claude-vm', '-c', 'user.email=claude-vm@localhost'];
    const c = await git([...identity, 'commit', '-q', '-m', message], this.projectDir);
    if (c.code !== 0) throw Object.assign(new Error((c.out + c.err).trim().split('\n').pop() || 'git commit failed'), { code: 'wrong_state' });
    const head = (await git(['rev-parse', 'HEAD'], this.projectDir)).out.trim();
    if (!push) return { commit: head, pushed: false, output: c.out };
    const p = await git(['push'], this.projectDir);
    if (p.code !== 0) throw Object.assign(new Error(`Committed ${head.slice(0, 12)}, but the push failed: ${(p.err || p.out).trim().split('\n').pop()}`), { code: 'wrong_state' });
    return { commit: head, pushed: true, output: (c.out + p.err).trim() };
  }
}
