/**
 * @module A workspace's approval rules, kept by the control plane where the agent cannot reach them: taken from the
 * project's `.claude-vm/gate-rules` when the workspace is created (before any agent has run in it), replaced with
 * `claude-vm workspace rules <id> --set FILE`, and handed to the workspace daemon with every message. The copy of
 * that file inside the workspace is the agent's to edit, and is never read again.
 */
import { Writable } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import { GateRulesError, MAX_RULES_BYTES, parseGateRules, type RuleAction } from '../protocol/gate-rules.js';
import type { Provider, ResourceRefs } from '../providers/provider.js';
import type { StateStore } from '../store/state.js';
import type { DaemonChannel } from './conversations.js';
import type { WorkspaceService } from './workspaces.js';

/** Where a project keeps its rules, relative to its root. */
export const PROJECT_RULES_FILE = '.claude-vm/gate-rules';

export interface WorkspaceRules {
  workspaceId: string;
  /** The file as given; null when only the built-in rules apply. */
  text: string | null;
  rules: Array<{ line: number; action: RuleAction; pattern: string; reason: string }>;
  updatedAt: string | null;
}

/** Parses for the user: a bad file is a one-line error naming the line, never a silently weaker gate. */
export function checkRules(text: string): WorkspaceRules['rules'] {
  try {
    return parseGateRules(text).map(({ line, action, pattern, reason }) => ({ line, action, pattern, reason }));
  } catch (e) {
    if (e instanceof GateRulesError) throw new UserError('invalid_argument', e.message, 'Each rule is `block|ask|allow PATTERN [# reason]`; see docs/security.md.');
    throw e;
  }
}

/**
 * The project's rules file from a freshly filled workspace (null when it has none). Called before the workspace
 * daemon starts, so the file is the source's, not anything an agent wrote.
 */
export async function readProjectRules(provider: Provider, refs: ResourceRefs, projectDir: string): Promise<string | null> {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (text.length <= MAX_RULES_BYTES) text += chunk.toString('utf8');
      cb();
    },
  });
  const h = await provider.exec(refs, { argv: ['sh', '-c', 'test -f "$1" || exit 3; cat "$1"', 'sh', PROJECT_RULES_FILE], cwd: projectDir, stdout: sink, stderr: new Writable({ write: (_c, _e, cb) => cb() }) });
  const code = await h.exit;
  if (code === 3) return null;
  if (code !== 0) throw new UserError('provider_unavailable', `Could not read the project's ${PROJECT_RULES_FILE}.`);
  try {
    checkRules(text);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.code, `The project's ${PROJECT_RULES_FILE} has a mistake. ${e.message}`, e.hint);
    throw e;
  }
  return text;
}

export class GateRulesService {
  constructor(
    private readonly store: StateStore,
    private readonly workspaces: WorkspaceService,
    private readonly daemons: DaemonChannel,
  ) {}

  async get(ref: string): Promise<WorkspaceRules> {
    const w = await this.workspaces.resolve(ref);
    const { text, updatedAt } = await this.store.gateRules(w.id);
    return { workspaceId: w.id, text, rules: text ? checkRules(text) : [], updatedAt };
  }

  /**
   * Adds rules ahead of the user's own (an "Always allow" of one exact command: the user just chose it, over any
   * broader rule of theirs that asked), keeping everything they wrote.
   */
  async prepend(ref: string, lines: string): Promise<WorkspaceRules> {
    const w = await this.workspaces.resolve(ref);
    const { text } = await this.store.gateRules(w.id);
    return this.set(w.id, `${lines.trimEnd()}\n${text ?? ''}`);
  }

  /** Replaces the rules (null: back to the built-in ones) and hands them to a running workspace's daemon at once. */
  async set(ref: string, text: string | null): Promise<WorkspaceRules> {
    const w = await this.workspaces.resolve(ref);
    if (text !== null) checkRules(text);
    await this.store.setGateRules(w.id, text);
    const t = await this.workspaces.runningTarget(w.id).catch(() => undefined);
    // A daemon that is not there now gets them with the next message, before its agent can run a command.
    if (t) await this.daemons.call(t, 'rules.set', { rules: text }).catch(() => undefined);
    return this.get(w.id);
  }
}
