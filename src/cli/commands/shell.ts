/** @module `claude-vm ssh` (interactive tmux shell) and `claude-vm exec` (scripts, exit code passed through). */
import type { Command } from 'commander';
import { ExitError, UserError } from '../../protocol/errors.js';
import { confirm } from '../options.js';
import { progressReporter } from '../progress.js';
import type { Context } from '../context.js';
import { runTerminal } from '../terminal.js';
import { sshStdio, workspaceRef } from './ssh.js';

export function shellCommands(program: Command, ctx: Context): void {
  program
    .command('ssh <id>')
    .description('Open an interactive shell in the workspace (a tmux session that later calls reattach)')
    .option('--stdio', "speak the SSH protocol on stdin/stdout to the workspace's SSH server (for ProxyCommand; see config-ssh)")
    .action(async (id: string, o: { stdio?: boolean }) => {
      if (o.stdio) return sshStdio(ctx.client(), id);
      const ref = workspaceRef(id);
      await offerToStart(ctx, ref);
      return runTerminal((io) => ctx.client().workspaces.shell(ref, io));
    });

  program
    .command('exec <id>')
    .description('Run a command in the project directory of a workspace and pass its exit code through')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-t, --tty', 'allocate a terminal')
    .option('--no-stdin', 'do not forward standard input')
    .addHelpText('after', '\nExample:\n  claude-vm exec bold-fire-1234 -- npm test')
    .action(async (id: string, argv: string[], o: { tty?: boolean; stdin: boolean }) => {
      // Forward stdin only when something can be read from it: a pipe or a file, never an idle terminal.
      const forward = o.stdin && (o.tty || !process.stdin.isTTY);
      if (o.tty && process.stdin.isTTY) process.stdin.setRawMode(true);
      try {
        const h = await ctx.client().workspaces.exec(id, {
          argv,
          tty: o.tty ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined,
          stdin: forward ? process.stdin : undefined,
          stdout: process.stdout,
          stderr: process.stderr,
        });
        throw new ExitError(await h.exit);
      } finally {
        if (o.tty && process.stdin.isTTY) process.stdin.setRawMode(false);
        process.stdin.pause();
      }
    });
}

/** A stopped workspace: on a terminal, offer to start it; otherwise say how. */
async function offerToStart(ctx: Context, ref: string): Promise<void> {
  const w = await ctx.client().workspaces.get(ref);
  if (w.status === 'running') return;
  const hint = `Start it with \`claude-vm workspace up ${w.id}\`.`;
  if (!process.stdin.isTTY) throw new UserError('wrong_state', `Workspace ${w.id} is ${w.status}.`, hint);
  await confirm(`Workspace ${w.id} is ${w.status}. Start it?`, false);
  const progress = progressReporter();
  try {
    await ctx.client().workspaces.up({ target: w.id }, progress.fn);
  } finally {
    progress.done();
  }
}
