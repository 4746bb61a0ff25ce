/** @module Shows progress of long steps on stderr: one live line on a terminal, one line per step otherwise. */
import type { ProgressEvent, ProgressFn } from '../protocol/types.js';

export interface Progress {
  fn: ProgressFn;
  done(): void;
}

export function progressReporter(enabled = true): Progress {
  const err = process.stderr;
  const start = Date.now();
  const stamp = () => `${((Date.now() - start) / 1000).toFixed(1)}s`;
  if (!enabled) return { fn: () => undefined, done: () => undefined };
  if (!err.isTTY) {
    let lastStep = '';
    return {
      fn: (e) => {
        // Logs and CI output: each step once, not every percentage tick.
        if (e.step === lastStep) return;
        lastStep = e.step;
        err.write(`[${stamp()}] ${e.step}${e.detail ? `: ${e.detail}` : ''}\n`);
      },
      done: () => undefined,
    };
  }
  let shown = false;
  return {
    fn: (e: ProgressEvent) => {
      const pct = e.fraction !== undefined ? ` ${Math.round(e.fraction * 100)}%` : '';
      const text = `${e.step}${pct}${e.detail ? ` – ${e.detail}` : ''}`;
      err.write(`\r\x1b[2K\x1b[2m[${stamp()}]\x1b[0m ${text.slice(0, (err.columns || 80) - 10)}`);
      shown = true;
    },
    done: () => {
      if (shown) err.write('\r\x1b[2K');
    },
  };
}
