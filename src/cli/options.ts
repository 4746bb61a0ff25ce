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
