/** @module Runs a short command in a workspace through the provider's exec and collects what it printed. */
import { Writable, type Readable } from 'node:stream';
import type { Provider, ResourceRefs } from '../providers/provider.js';

/** Resolves with the exit code and the last 4000 characters of stdout and stderr together. */
export async function run(
  provider: Provider,
  refs: ResourceRefs,
  argv: string[],
  opts: { cwd?: string; stdin?: Readable; onLine?: (line: string) => void } = {},
): Promise<{ code: number; output: string }> {
  let output = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-4000);
      if (opts.onLine) for (const l of text.split(/[\r\n]+/)) if (l.trim()) opts.onLine(l.trim());
      cb();
    },
  });
  const h = await provider.exec(refs, { argv, cwd: opts.cwd, stdin: opts.stdin, stdout: sink, stderr: sink });
  return { code: await h.exit, output };
}
