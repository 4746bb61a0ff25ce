/** @module `claude-vm image build`: the workspace image, from the Dockerfile or fully offline via debootstrap. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ExitError, UserError } from '../../protocol/errors.js';
import { DEFAULT_IMAGE } from '../../core/defaults.js';
import type { Context } from '../context.js';
import { runsOffline } from '../offline.js';

/** image/ ships inside the npm package, next to dist/. */
export function imageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'image', 'Dockerfile'))) {
    const up = dirname(dir);
    if (up === dir) throw new UserError('not_found', 'Cannot find the image/ folder of this claude-vm installation.');
    dir = up;
  }
  return join(dir, 'image');
}

export function imageCommands(program: Command, _ctx: Context): void {
  const image = program.command('image').description('Build the workspace image');
  runsOffline(image.command('build'))
    .description('Build the workspace image (Node 24, git, tmux and the agent CLIs)')
    .option('--offline', 'build without a container registry: debootstrap a Debian base from your apt mirror')
    .option('--tag <tag>', 'image tag', DEFAULT_IMAGE)
    .option('--ca-bundle <file>', 'extra CA certificates to trust in the build and in workspaces (default: $NODE_EXTRA_CA_CERTS)')
    .option('--agents <list>', 'agent CLIs to install', 'claude codex gemini qwen opencode')
    .option('--force', 'rebuild even when an image of the same inputs exists')
    .action(async (o: { offline?: boolean; tag: string; caBundle?: string; agents: string; force?: boolean }) => {
      const ca = o.caBundle ?? process.env.NODE_EXTRA_CA_CERTS;
      if (ca && !existsSync(ca)) throw new UserError('not_found', `CA bundle ${ca} does not exist.`, 'Pass --ca-bundle with an existing PEM file.');
      const args = [join(imageDir(), 'build.sh'), '--tag', o.tag, '--agents', o.agents, ...(ca ? ['--ca-bundle', ca] : []), ...(o.offline ? ['--offline'] : []), ...(o.force ? ['--force'] : [])];
      const child = spawn('bash', args, { stdio: 'inherit' });
      const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
      if (code !== 0) throw new ExitError(code);
    });
}
