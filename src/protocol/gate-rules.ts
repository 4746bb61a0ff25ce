/**
 * @module The user's approval rules (a project's `.claude-vm/gate-rules`, or `claude-vm workspace rules --set`):
 * one rule a line, `block|ask|allow PATTERN [# reason]`. Parsed by the control plane when it takes them (so a typo
 * is an error there, not a silent gap) and by the workspace daemon that applies them. No Node APIs: both sides use it.
 */

export type RuleAction = 'block' | 'ask' | 'allow';

export interface GateRule {
  action: RuleAction;
  /** The pattern as written. */
  pattern: string;
  /** Shown to the agent and the user; the rule's own line when the file gives none. */
  reason: string;
  /** Line number in the file, for error messages and `workspace rules`. */
  line: number;
  test: (command: string) => boolean;
}

export class GateRulesError extends Error {}

/** Large enough for any hand-written file, small enough that a mistake (a binary) is refused. */
export const MAX_RULES_BYTES = 64 * 1024;

/**
 * Parses a rules file; throws GateRulesError naming the first bad line.
 *
 * A PATTERN is a glob over one simple command as the gate sees it (words separated by single spaces, the
 * program without its directory, quotes removed): `*` matches any text, `?` one character, and the pattern also
 * matches when more arguments follow (`git push` matches `git push origin main`). `/regex/` (optionally `/regex/i`)
 * is a JavaScript regular expression searched anywhere in the command.
 */
export function parseGateRules(text: string): GateRule[] {
  if (text.length > MAX_RULES_BYTES) throw new GateRulesError(`The rules file is larger than ${MAX_RULES_BYTES / 1024} KB.`);
  const rules: GateRule[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const body = raw.trim();
    if (!body || body.startsWith('#')) return;
    const m = /^(block|ask|allow)\s+(.+?)(?:\s+#\s*(.*))?$/.exec(body);
    if (!m) throw new GateRulesError(`Line ${line} of the rules: "${body}" is not \`block|ask|allow PATTERN [# reason]\`.`);
    const action = m[1] as RuleAction;
    const pattern = m[2]!;
    rules.push({ action, pattern, reason: m[3]?.trim() || `your rule "${action} ${pattern}"`, line, test: compile(pattern, line) });
  });
  return rules;
}

/** The first rule that matches the command, if any: the order of the file is the order of precedence. */
export function matchGateRule(rules: GateRule[], command: string): GateRule | undefined {
  return rules.find((r) => r.test(command));
}

function compile(pattern: string, line: number): (command: string) => boolean {
  const re = /^\/(.+)\/([imsu]*)$/.exec(pattern);
  if (re) {
    try {
      const r = new RegExp(re[1]!, re[2]);
      return (c) => r.test(c);
    } catch (e) {
      throw new GateRulesError(`Line ${line} of the rules: ${(e as Error).message}.`);
    }
  }
  const glob = pattern.split(/\s+/).join(' ').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const r = new RegExp(`^${glob}(?: .*)?$`, 's');
  return (c) => r.test(c);
}
