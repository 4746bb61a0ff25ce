/** @module Waiting in tests: poll until something is there, or fail saying what never came (and why, if asked). */

/**
 * Polls `probe` until it returns something other than undefined or false, and returns that. On timeout it throws
 * "timed out waiting for <what>", followed by `explain()` when given (what each party was doing).
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; everyMs?: number; explain?: () => string } = {},
): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 90_000);
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${opts.explain ? `\n${opts.explain()}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 300));
  }
}
