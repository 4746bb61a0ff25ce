/**
 * @module The approval gate's rules, claudetainer's three tiers: a few commands are never run (privilege escalation,
 * reading credentials, wiping the root), a few wait for the user (history rewrites, publishing, piping downloads
 * into a shell), everything else runs. A shell command is split into every command it would run, so the rules see
 * through `;`, `&&`, pipes, `$(…)`, backticks, line continuations, `sh -c`, `find -exec` and `xargs`. The user's own
 * rules (src/protocol/gate-rules.ts), delivered by the control plane and never read from the volume, come first.
 */

import { matchGateRule, type GateRule } from '../protocol/gate-rules.js';

export type Verdict = { action: 'allow' } | { action: 'block' | 'ask'; reason: string };

interface Rule {
  test: (argv: string[], words: string) => boolean;
  reason: string;
}

const CREDENTIALS = /(\.credentials\.json|\.codex\/auth\.json|oauth_creds\.json|opencode\/auth\.json|\/proc\/[^ ]*\/environ|\.claude-vm\/tunnel\.json|\.ssh\/id_[a-z0-9]+\b)/;
const READING_CREDENTIALS = 'reading credentials is not allowed';

const BLOCK: Rule[] = [
  { test: (a) => ['sudo', 'su', 'doas', 'pkexec'].includes(a[0]!), reason: 'privilege escalation is not allowed in a workspace' },
  { test: (a) => a[0] === 'rm' && a.some((x) => /^-\w*r/.test(x) || x === '--recursive') && a.some((x) => /^(\/|\/\*|~\/?|\$HOME\/?)$/.test(x)), reason: 'deleting the root or home directory is not allowed' },
  { test: (_a, w) => CREDENTIALS.test(w), reason: READING_CREDENTIALS },
];

const ASK: Rule[] = [
  { test: (a) => a[0] === 'git' && a.includes('push') && a.some((x) => x === '-f' || x === '--force' || x.startsWith('--force-with-lease') || /^\+/.test(x) || x === '--mirror' || x === '--delete' || x === '-d'), reason: 'a force push or remote deletion rewrites shared history' },
  { test: (a) => a[0] === 'git' && (a.includes('reset') && a.includes('--hard') || a.includes('clean') && a.some((x) => /^-\w*f/.test(x))), reason: 'this discards work that is not committed' },
  { test: (a) => ['npm', 'pnpm', 'yarn', 'cargo', 'twine', 'gem'].includes(a[0]!) && a.includes('publish'), reason: 'publishing a package is visible to the world' },
  { test: (a) => a[0] === 'rm' && a.some((x) => /^-\w*r/.test(x) || x === '--recursive') && a.some((x) => /^(\.\.?\/?|\*|\.git\/?)$/.test(x)), reason: 'a recursive delete of the project' },
];

/** Downloads piped straight into an interpreter. */
const PIPE_TO_SHELL = /\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b/;

/**
 * The verdict for a shell line. Each command it would run is decided by the first user rule that matches it, else
 * by the built-in rules; the line gets the strictest of those (block over ask over allow). The checks that look at
 * the whole line (credentials mentioned anywhere, a download piped into a shell) apply unless the user allowed
 * every command in it.
 */
export function classify(command: string, rules: GateRule[] = []): Verdict {
  const flat = command.replace(/\\\r?\n/g, ' ');
  const commands = split(flat);
  let verdict: Verdict = { action: 'allow' };
  let userAllowedAll = commands.length > 0;
  for (const argv of commands) {
    const mine = matchGateRule(rules, argv.join(' '));
    if (mine?.action !== 'allow') userAllowedAll = false;
    verdict = stricter(verdict, mine ? (mine.action === 'allow' ? { action: 'allow' } : { action: mine.action, reason: mine.reason }) : builtIn(argv));
  }
  if (!userAllowedAll) {
    if (CREDENTIALS.test(flat)) verdict = stricter(verdict, { action: 'block', reason: READING_CREDENTIALS });
    if (PIPE_TO_SHELL.test(flat)) verdict = stricter(verdict, { action: 'ask', reason: 'a download is piped into a shell' });
  }
  return verdict;
}

/**
 * "Always allow": rules that let this exact line through from now on, one exact-match rule per command in it (so
 * every command is the user's, and the whole-line checks step aside too). Anything else still meets the gate.
 */
export function allowRulesFor(line: string, by: string): string {
  const exact = (argv: string[]) => argv.join(' ').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&').replace(/#/g, '\\x23').replace(/\n/g, '\\n');
  const who = by.replace(/[\r\n#]/g, ' ').trim() || 'someone';
  return [...new Set(split(line.replace(/\\\r?\n/g, ' ')).map(exact))].map((re) => `allow /^${re}$/ # always allowed by ${who}`).join('\n');
}

function builtIn(argv: string[]): Verdict {
  const words = argv.join(' ');
  for (const r of BLOCK) if (r.test(argv, words)) return { action: 'block', reason: r.reason };
  for (const r of ASK) if (r.test(argv, words)) return { action: 'ask', reason: r.reason };
  return { action: 'allow' };
}

const RANK = { allow: 0, ask: 1, block: 2 } as const;
/** The stricter verdict; on a tie the first, so the reason is the first command's. */
function stricter(a: Verdict, b: Verdict): Verdict {
  return RANK[b.action] > RANK[a.action] ? b : a;
}

const WRAPPERS = ['env', 'nohup', 'time', 'timeout', 'nice', 'command', 'exec', 'builtin', 'then', 'do', 'else', '!'];

/** Every simple command a shell line would run, as argv, including those nested in substitutions and wrappers. */
export function split(line: string): string[][] {
  const out: string[][] = [];
  const visit = (text: string, depth: number) => {
    if (depth > 8) return;
    // Substitutions run too: $( … ) and ` … `.
    for (const m of text.matchAll(/\$\(([^()]*(?:\([^()]*\)[^()]*)*)\)|`([^`]*)`/g)) visit(m[1] ?? m[2] ?? '', depth + 1);
    for (const part of text.split(/;|&&|\|\||\||&|\n|\(|\)|\{|\}/)) {
      let argv = words(part);
      // `VAR=value cmd`, and wrappers that run the rest of the line as a command (with their own options).
      for (;;) {
        while (argv.length && /^\w+=/.test(argv[0]!)) argv = argv.slice(1);
        if (!argv.length || !WRAPPERS.includes(argv[0]!)) break;
        argv = argv.slice(1);
        while (argv.length && (/^-/.test(argv[0]!) || /^\d+[smhd]?$/.test(argv[0]!))) argv = argv.slice(1);
      }
      if (!argv.length) continue;
      argv[0] = argv[0]!.replace(/^.*\//, ''); // /usr/bin/sudo is sudo
      out.push(argv);
      const c = argv.indexOf('-c');
      if (['sh', 'bash', 'zsh', 'dash'].includes(argv[0]!) && c >= 0 && argv[c + 1]) visit(argv[c + 1]!, depth + 1);
      if (argv[0] === 'xargs') visit(argv.slice(1).filter((x) => !/^-/.test(x)).join(' '), depth + 1);
      if (argv[0] === 'find') {
        const at = argv.findIndex((x) => x === '-exec' || x === '-execdir' || x === '-ok');
        if (at >= 0) visit(argv.slice(at + 1).filter((x) => x !== ';' && x !== '\\;' && x !== '{}' && x !== '+').join(' '), depth + 1);
      }
    }
  };
  visit(line, 0);
  return out;
}

/** Shell words with quotes removed (enough to read a command's name and flags; no expansion). */
function words(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|((?:[^\s"'\\]|\\.)+)/g)) {
    out.push((m[1] ?? m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
  }
  return out;
}
