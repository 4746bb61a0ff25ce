/**
 * @module The approval gate's rules, claudetainer's three tiers: a few commands are never run (privilege escalation,
 * reading credentials, wiping the root), a few wait for the user (history rewrites, publishing, piping downloads
 * into a shell), everything else runs. A shell command is split into every command it would run, so the rules see
 * through `;`, `&&`, pipes, `$(…)`, backticks, line continuations, `sh -c`, `find -exec` and `xargs`.
 */

export type Verdict = { action: 'allow' } | { action: 'block' | 'ask'; reason: string };

interface Rule {
  test: (argv: string[], words: string) => boolean;
  reason: string;
}

const BLOCK: Rule[] = [
  { test: (a) => ['sudo', 'su', 'doas', 'pkexec'].includes(a[0]!), reason: 'privilege escalation is not allowed in a workspace' },
  { test: (a) => a[0] === 'rm' && a.some((x) => /^-\w*r/.test(x) || x === '--recursive') && a.some((x) => /^(\/|\/\*|~\/?|\$HOME\/?)$/.test(x)), reason: 'deleting the root or home directory is not allowed' },
  {
    test: (_a, w) => /(\.credentials\.json|\.codex\/auth\.json|oauth_creds\.json|opencode\/auth\.json|\/proc\/[^ ]*\/environ|\.claude-vm\/tunnel\.json|\.ssh\/id_[a-z0-9]+\b)/.test(w),
    reason: 'reading credentials is not allowed',
  },
];

const ASK: Rule[] = [
  { test: (a) => a[0] === 'git' && a.includes('push') && a.some((x) => x === '-f' || x === '--force' || x.startsWith('--force-with-lease') || /^\+/.test(x) || x === '--mirror' || x === '--delete' || x === '-d'), reason: 'a force push or remote deletion rewrites shared history' },
  { test: (a) => a[0] === 'git' && (a.includes('reset') && a.includes('--hard') || a.includes('clean') && a.some((x) => /^-\w*f/.test(x))), reason: 'this discards work that is not committed' },
  { test: (a) => ['npm', 'pnpm', 'yarn', 'cargo', 'twine', 'gem'].includes(a[0]!) && a.includes('publish'), reason: 'publishing a package is visible to the world' },
  { test: (a) => a[0] === 'rm' && a.some((x) => /^-\w*r/.test(x) || x === '--recursive') && a.some((x) => /^(\.\.?\/?|\*|\.git\/?)$/.test(x)), reason: 'a recursive delete of the project' },
];

/** Downloads piped straight into an interpreter. */
const PIPE_TO_SHELL = /\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b/;

export function classify(command: string): Verdict {
  const flat = command.replace(/\\\r?\n/g, ' ');
  const commands = split(flat);
  const all = [flat, ...commands.map((c) => c.join(' '))].join('\n');
  for (const r of BLOCK) if (commands.some((argv) => r.test(argv, all)) || r.test([''], all)) return { action: 'block', reason: r.reason };
  if (PIPE_TO_SHELL.test(flat)) return { action: 'ask', reason: 'a download is piped into a shell' };
  for (const argv of commands) for (const r of ASK) if (r.test(argv, all)) return { action: 'ask', reason: r.reason };
  return { action: 'allow' };
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
