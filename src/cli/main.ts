/** @module The claude-vm command line: one table of commands and the one place errors become output. */
import { Command, CommanderError } from 'commander';
import { ExitError, UserError } from '../protocol/errors.js';
import { createContext } from './context.js';
import { isOffline } from './offline.js';
import { serverCommands } from './commands/server.js';
import { accountCommands } from './commands/accounts.js';
import { sshCommands } from './commands/ssh.js';
import { providerCommands } from './commands/provider.js';
import { workspaceCommands } from './commands/workspace.js';
import { shellCommands } from './commands/shell.js';
import { imageCommands } from './commands/image.js';
import { agentCommands } from './commands/agents.js';
import { chatCommands } from './commands/chat.js';

export { VERSION } from '../version.js';
import { VERSION } from '../version.js';

export async function main(argv: string[]): Promise<void> {
  const ctx = createContext();
  const program = new Command('claude-vm')
    .description('Run Claude Code and other coding agents in isolated workspaces, locally or remotely')
    .version(VERSION)
    .option('--debug', 'print stack traces for unexpected errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.configureOutput({ outputError: (s, write) => write(s) });
  providerCommands(program, ctx);
  workspaceCommands(program, ctx);
  shellCommands(program, ctx);
  imageCommands(program, ctx);
  agentCommands(program, ctx);
  chatCommands(program, ctx);
  serverCommands(program, ctx);
  accountCommands(program, ctx);
  sshCommands(program, ctx);
  for (const c of allCommands(program)) c.exitOverride();
  // Commands reach the control plane through the API; connecting (and starting a local server) happens only
  // when a command that needs it runs, never for --help.
  program.hook('preAction', async (_root, action) => {
    if (!isOffline(action)) await ctx.connect();
  });

  let code = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    code = report(e, argv.includes('--debug'));
  } finally {
    ctx.close();
  }
  // Open sockets (Docker keep-alive, a paused stdin) must not keep a finished command alive.
  process.exit(code);
}

function report(e: unknown, debug: boolean): number {
  if (e instanceof ExitError) return e.exitCode;
  if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? 0 : 2;
  if (e instanceof UserError) {
    process.stderr.write(`error: ${e.message}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    if (debug && e.cause) process.stderr.write(`${(e.cause as Error).stack ?? e.cause}\n`);
    return 1;
  }
  const err = e as Error;
  process.stderr.write(`error: unexpected failure: ${err?.message ?? String(e)}\n`);
  if (debug) process.stderr.write(`${err?.stack}\n`);
  else process.stderr.write('hint: run again with --debug for details, and report it if it persists.\n');
  return 1;
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((s) => [s, ...allCommands(s)]);
}
