/** @module Puts the project into a fresh workspace using nothing but the provider's exec: copy a path or clone a URL. */
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { run } from './run-in-workspace.js';
import { UserError } from '../protocol/errors.js';
import type { ProgressFn } from '../protocol/types.js';
import type { Provider, ResourceRefs } from '../providers/provider.js';
import type { Source } from './sources.js';

export async function populate(
  provider: Provider,
  refs: ResourceRefs,
  source: Source,
  projectDir: string,
  branch: string | null,
  progress: ProgressFn,
): Promise<void> {
  const root = provider.workspaceRoot(refs);
  if (source.sourceKind === 'git') {
    progress({ step: 'Cloning', detail: source.source });
    const r = await run(provider, refs, ['git', 'clone', '--progress', source.source, projectDir], {
      cwd: root,
      onLine: (l) => progress({ step: 'Cloning', detail: l }),
    });
    if (r.code !== 0) {
      throw new UserError('source_failed', `Could not clone ${source.source}: ${lastLine(r.output)}.`, 'Check the URL and that the workspace can reach it.');
    }
  } else if (source.sourceKind === 'path') {
    await copyIn(provider, refs, source.source, projectDir, progress);
  } else {
    const mk = await run(provider, refs, ['mkdir', '-p', projectDir], { cwd: root });
    if (mk.code !== 0) throw new UserError('source_failed', `Could not create ${projectDir} in the workspace: ${lastLine(mk.output)}.`);
  }
  if (branch) {
    progress({ step: 'Checking out', detail: branch });
    const r = await run(provider, refs, ['sh', '-c', 'git switch "$1" 2>/dev/null || git switch -c "$1"', 'sh', branch], { cwd: projectDir });
    if (r.code !== 0) throw new UserError('source_failed', `Could not check out branch ${branch}: ${lastLine(r.output)}.`, 'Is the project a git repository?');
  }
}

/** Streams `tar` from the host into `tar -x` in the workspace: a copy, not a bind mount, so the laptop can leave. */
async function copyIn(provider: Provider, refs: ResourceRefs, from: string, projectDir: string, progress: ProgressFn): Promise<void> {
  const tar = spawn('tar', ['-C', from, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let errText = '';
  tar.stderr.on('data', (d: Buffer) => (errText += d.toString()));
  let bytes = 0;
  let last = 0;
  const counted = new PassThrough();
  tar.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    if (bytes - last > 4 << 20) {
      last = bytes;
      progress({ step: 'Copying files', detail: `${(bytes / 1e6).toFixed(0)} MB` });
    }
  });
  tar.stdout.pipe(counted);
  progress({ step: 'Copying files', detail: from });
  const tarDone = new Promise<number>((resolve) => tar.on('close', (c) => resolve(c ?? 1)));
  // --no-same-owner: files belong to the workspace user whatever their uid on the laptop.
  const r = await run(provider, refs, ['sh', '-c', 'mkdir -p "$1" && exec tar -x --no-same-owner -f - -C "$1"', 'sh', projectDir], { stdin: counted });
  const tarCode = await tarDone;
  if (tarCode !== 0) throw new UserError('source_failed', `Could not read ${from}: ${lastLine(errText)}.`, 'Check the permissions of the directory.');
  if (r.code !== 0) throw new UserError('source_failed', `Copying into the workspace failed: ${lastLine(r.output)}.`);
  progress({ step: 'Copying files', detail: `${(bytes / 1e6).toFixed(1)} MB copied` });
}

function lastLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines[lines.length - 1] ?? 'no output').replace(/\.$/, '');
}
