/** @module Parsing helpers shared by commands. */
import { UserError } from '../protocol/errors.js';
import { createInterface } from 'node:readline/promises';

/** `--option k=v` may repeat; commander hands each to this reducer. */
export function collectKeyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new UserError('invalid_argument', `Option "${value}" is not of the form key=value.`, 'Write it as --option key=value.');
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

/** Asks y/N on a terminal; refuses (rather than guessing) when nobody can answer. */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) {
    throw new UserError('cancelled', `${question.replace(/\?$/, '')}: confirmation needed.`, 'Pass -y/--yes to confirm without a prompt.');
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new UserError('cancelled', 'Cancelled; nothing was changed.');
}

/** "90s", "30m", "2h", "1d", or a bare number of minutes; "0" means never. Returns seconds. */
export function parseDuration(value: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(value.trim());
  if (!m) throw new UserError('invalid_argument', `Invalid ${what} "${value}".`, 'Write it like 90s, 30m, 2h or 1d (a bare number is minutes; 0 is never).');
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, '': 60 }[m[2] as 's' | 'm' | 'h' | 'd' | ''];
  return Math.round(n);
}

export function parseCount(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UserError('invalid_argument', `Invalid ${what} "${value}".`, 'Give a whole number, 0 or more.');
  return n;
}
