/** @module Runs an interactive remote terminal on this one: raw mode, size and resizes, exit code passed through. */
import { ExitError } from '../protocol/errors.js';
import type { ExecHandle } from '../providers/provider.js';
import type { StreamIo } from '../client/client.js';

export async function runTerminal(open: (io: StreamIo) => Promise<ExecHandle>): Promise<never> {
  const interactive = !!process.stdin.isTTY && !!process.stdout.isTTY;
  const size = () => ({ rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 });
  if (interactive) process.stdin.setRawMode(true);
  try {
    const h = await open({
      tty: interactive ? size() : undefined,
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: { TERM: process.env.TERM || 'xterm-256color' },
    });
    const onResize = () => h.resize(size().rows, size().cols);
    process.stdout.on('resize', onResize);
    const code = await h.exit;
    process.stdout.off('resize', onResize);
    throw new ExitError(code);
  } finally {
    if (interactive) process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}
