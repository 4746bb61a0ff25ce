/** @module Human-friendly workspace ids such as `bold-fire-1234`: easy to say, type and prefix-match. */
import { randomInt } from 'node:crypto';

const ADJECTIVES = [
  'bold', 'brave', 'bright', 'calm', 'clever', 'cool', 'crisp', 'eager', 'fair', 'fast', 'fierce', 'fond', 'gentle',
  'glad', 'grand', 'green', 'happy', 'keen', 'kind', 'lively', 'lucky', 'merry', 'mild', 'neat', 'nimble', 'noble',
  'proud', 'quick', 'quiet', 'rapid', 'ready', 'royal', 'sharp', 'shy', 'silent', 'sleek', 'smart', 'snug', 'solid',
  'steady', 'still', 'sunny', 'swift', 'tidy', 'vivid', 'warm', 'wise', 'witty', 'young', 'zesty',
];
const NOUNS = [
  'arch', 'bay', 'brook', 'cedar', 'cliff', 'cloud', 'coast', 'comet', 'dawn', 'delta', 'dune', 'ember', 'fern',
  'field', 'fire', 'fjord', 'flame', 'forest', 'frost', 'glade', 'grove', 'harbor', 'hill', 'island', 'lake', 'leaf',
  'meadow', 'mesa', 'moon', 'moss', 'oak', 'ocean', 'peak', 'pine', 'pond', 'rain', 'reef', 'ridge', 'river', 'rock',
  'sky', 'snow', 'spring', 'star', 'stone', 'storm', 'sun', 'tide', 'valley', 'wave',
];

export function newWorkspaceId(): string {
  const a = ADJECTIVES[randomInt(ADJECTIVES.length)]!;
  const n = NOUNS[randomInt(NOUNS.length)]!;
  return `${a}-${n}-${String(randomInt(10000)).padStart(4, '0')}`;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomInt(2 ** 32).toString(16).padStart(8, '0')}${randomInt(2 ** 16).toString(16).padStart(4, '0')}`;
}
