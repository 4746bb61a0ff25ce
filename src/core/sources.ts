/** @module Works out what `workspace up <target>` means: a git URL to clone, a local path to copy, or nothing. */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { UserError } from '../protocol/errors.js';
import type { ProjectInfo } from '../protocol/types.js';

export type Source = Omit<ProjectInfo, 'id'>;

const GIT_URL = /^(https?:\/\/|ssh:\/\/|git:\/\/|file:\/\/|[\w.-]+@[\w.-]+:)/;

export function looksLikeGitUrl(target: string): boolean {
  return GIT_URL.test(target);
}

export function looksLikePath(target: string): boolean {
  return target === '.' || target === '..' || target.includes('/') || target.startsWith('~');
}

/** Validates before anything is created, so a typo never leaves a half-made workspace behind. */
export function resolveSource(target: string | undefined): Source {
  if (!target) return { name: 'project', source: '', sourceKind: 'empty' };
  if (looksLikeGitUrl(target)) {
    const name = repoName(target);
    if (!name) throw new UserError('invalid_argument', `Cannot tell the repository name from "${target}".`, 'Pass a URL such as https://host/owner/repo.git.');
    return { name, source: target, sourceKind: 'git' };
  }
  const path = resolve(target.replace(/^~(?=\/|$)/, process.env.HOME ?? '~'));
  if (!existsSync(path)) {
    throw new UserError('not_found', `Path ${path} does not exist.`, 'Pass an existing directory, a git URL, or a workspace id.');
  }
  if (!statSync(path).isDirectory()) {
    throw new UserError('invalid_argument', `${path} is not a directory.`, 'Pass the project directory, not a file.');
  }
  return { name: safeName(basename(path)) || 'project', source: path, sourceKind: 'path' };
}

export function repoName(url: string): string {
  const last = url.replace(/\/+$/, '').split(/[/:]/).pop() ?? '';
  return safeName(last.replace(/\.git$/, ''));
}

/** Directory names inside the workspace: keep them shell- and URL-friendly. */
function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '').slice(0, 64);
}

/** The git branch a local checkout is on, so `list -l` can show it when --branch was not given. */
export function currentBranch(path: string): string | null {
  const r = spawnSync('git', ['-C', path, 'rev-parse', '--abbrev-ref', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== 'HEAD' ? r.stdout.trim() : null;
}
