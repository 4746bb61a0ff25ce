/** @module Agent settings (`agent set`): base URL, model and secrets, per agent, with per-workspace overrides. */
import { AGENTS, type AgentName } from '../protocol/events.js';
import { UserError } from '../protocol/errors.js';
import { MASK } from '../store/secrets.js';
import type { StateStore } from '../store/state.js';

/** Each agent's own variable for a custom endpoint, so gateways and other providers can be used. */
const BASE_URL_VAR: Record<AgentName, string> = {
  claude: 'ANTHROPIC_BASE_URL',
  codex: 'OPENAI_BASE_URL',
  gemini: 'GOOGLE_GEMINI_BASE_URL',
  qwen: 'OPENAI_BASE_URL',
  opencode: 'OPENCODE_BASE_URL',
};

export interface AgentSettings {
  agent: AgentName;
  /** null: the default for every workspace. */
  workspaceId: string | null;
  baseUrl: string | null;
  model: string | null;
  /** Secret names with masked values. */
  secrets: Record<string, string>;
  updatedAt: string;
}

export interface SetAgentRequest {
  agent: string;
  workspaceId?: string;
  baseUrl?: string;
  model?: string;
  /** NAME=VALUE pairs; an empty value removes the secret. */
  secrets?: Record<string, string>;
}

export function parseAgent(name: string): AgentName {
  if (!AGENTS.includes(name as AgentName)) throw new UserError('invalid_argument', `Unknown agent "${name}".`, `Known agents: ${AGENTS.join(', ')}.`);
  return name as AgentName;
}

export class AgentService {
  constructor(
    private readonly store: StateStore,
    /** Settings and secrets are each user's own. */
    private readonly userId: string,
  ) {}

  async set(req: SetAgentRequest): Promise<AgentSettings> {
    const agent = parseAgent(req.agent);
    if (req.baseUrl !== undefined && req.baseUrl !== '' && !/^https?:\/\/[^\s]+$/.test(req.baseUrl)) {
      throw new UserError('invalid_argument', `"${req.baseUrl}" is not an http(s) URL.`, 'Pass --base-url https://gateway.example/…');
    }
    for (const k of Object.keys(req.secrets ?? {})) {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new UserError('invalid_argument', `"${k}" is not an environment variable name.`, 'Write secrets as --secret NAME=VALUE, e.g. ANTHROPIC_API_KEY=…');
    }
    const workspaceId = req.workspaceId ?? '';
    const current = (await this.store.listAgentConfigs(this.userId)).find((c) => c.agent === agent && c.workspaceId === workspaceId);
    const secrets = Object.fromEntries(Object.entries({ ...current?.secrets, ...req.secrets }).filter(([, v]) => v !== ''));
    await this.store.upsertAgentConfig(this.userId, {
      agent,
      workspaceId,
      baseUrl: req.baseUrl === undefined ? current?.baseUrl ?? null : req.baseUrl || null,
      model: req.model === undefined ? current?.model ?? null : req.model || null,
      secrets,
    });
    return (await this.list()).find((s) => s.agent === agent && (s.workspaceId ?? '') === workspaceId)!;
  }

  async list(): Promise<AgentSettings[]> {
    return (await this.store.listAgentConfigs(this.userId)).map((c) => ({
      agent: c.agent as AgentName,
      workspaceId: c.workspaceId || null,
      baseUrl: c.baseUrl,
      model: c.model,
      secrets: Object.fromEntries(Object.keys(c.secrets).map((k) => [k, MASK])),
      updatedAt: c.updatedAt,
    }));
  }

  /** What the agent process gets in a workspace: the default settings overlaid with that workspace's own. */
  async launchSettings(agent: AgentName, workspaceId: string): Promise<{ env: Record<string, string>; model: string | null }> {
    const rows = (await this.store.listAgentConfigs(this.userId)).filter((c) => c.agent === agent && (c.workspaceId === '' || c.workspaceId === workspaceId));
    rows.sort((a, b) => a.workspaceId.length - b.workspaceId.length);
    const env: Record<string, string> = {};
    let model: string | null = null;
    for (const r of rows) {
      Object.assign(env, r.secrets);
      if (r.baseUrl) env[BASE_URL_VAR[agent]] = r.baseUrl;
      if (r.model) model = r.model;
    }
    return { env, model };
  }
}
