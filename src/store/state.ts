/**
 * @module Typed access to the state store: providers, projects, workspaces, agent settings and conversations.
 * Portable SQL over the `Db` seam, so SQLite and PostgreSQL serve the same methods.
 */
import type { Db, Queryable } from './db.js';
import { SecretBox, isSecretOption, MASK } from './secrets.js';
import type { ProjectInfo, WorkspaceInfo, WorkspaceStatus } from '../protocol/types.js';
import type { ResourceRefs } from '../providers/provider.js';
import type { ConversationInfo } from '../protocol/events.js';

export interface ProviderRow {
  name: string;
  type: string;
  /** Unsealed option values: only for handing to the provider, never for display. */
  options: Record<string, string>;
  /** null: shared by every user. */
  ownerId: string | null;
  createdAt: string;
}

export interface WorkspaceRow extends Omit<WorkspaceInfo, 'providerType' | 'costUsd' | 'uptimeSeconds' | 'egress'> {
  resources: ResourceRefs;
  /** Egress allowlist entries the user added at creation (`--allow-domain`). */
  allowDomains: string[];
  ownerId: string | null;
  /** Seconds of finished runs; the current run is counted from startedAt. */
  uptimeSeconds: number;
}

export interface NewWorkspace {
  id: string;
  name: string | null;
  projectId: string;
  provider: string;
  image: string;
  branch: string | null;
  projectDir: string;
  status: WorkspaceStatus;
  ownerId: string;
  size: string;
  autoStopSeconds: number | null;
  allowDomains?: string[];
}

export type WorkspacePatch = Partial<
  Pick<WorkspaceRow, 'status' | 'statusReason' | 'resources' | 'startedAt' | 'provider' | 'image' | 'projectDir' | 'uptimeSeconds' | 'lastActivityAt' | 'stoppedAt' | 'autoStopSeconds'>
>;

export const now = (): string => new Date().toISOString();

export class StateStore {
  constructor(
    readonly db: Db,
    readonly box: SecretBox,
  ) {}

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- providers

  async listProviders(): Promise<ProviderRow[]> {
    const rows = await this.db.all<DbProvider>('SELECT * FROM providers ORDER BY name');
    return rows.map((r) => this.providerFromDb(r));
  }

  async getProvider(name: string): Promise<ProviderRow | undefined> {
    const r = await this.db.get<DbProvider>('SELECT * FROM providers WHERE name = ?', [name]);
    return r && this.providerFromDb(r);
  }

  /** Inserts unless the name exists (two requests registering a built-in provider at once). */
  async insertProvider(p: Omit<ProviderRow, 'createdAt'>): Promise<boolean> {
    const r = await this.db.run('INSERT INTO providers (name, type, options, owner_id, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING', [
      p.name, p.type, this.sealOptions(p.options), p.ownerId, now(),
    ]);
    return r.changes > 0;
  }

  async updateProviderOptions(name: string, options: Record<string, string>): Promise<void> {
    await this.db.run('UPDATE providers SET options = ? WHERE name = ?', [this.sealOptions(options), name]);
  }

  async deleteProvider(name: string): Promise<void> {
    await this.db.run('DELETE FROM providers WHERE name = ?', [name]);
  }

  async countWorkspacesOn(provider: string): Promise<number> {
    return Number((await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM workspaces WHERE provider = ?', [provider]))!.n);
  }

  /** Options as they may be shown: secret values masked. */
  static maskOptions(options: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(options).map(([k, v]) => [k, isSecretOption(k) ? MASK : v]));
  }

  private sealOptions(options: Record<string, string>): string {
    return JSON.stringify(Object.fromEntries(Object.entries(options).map(([k, v]) => [k, isSecretOption(k) ? this.box.seal(v) : v])));
  }

  private providerFromDb(r: DbProvider): ProviderRow {
    const sealed = JSON.parse(r.options) as Record<string, string>;
    return {
      name: r.name,
      type: r.type,
      options: Object.fromEntries(Object.entries(sealed).map(([k, v]) => [k, this.box.open(v)])),
      ownerId: r.owner_id,
      createdAt: r.created_at,
    };
  }

  // ---- projects

  async findOrCreateProject(p: Omit<ProjectInfo, 'id'>, newId: () => string): Promise<ProjectInfo> {
    const id = newId();
    await this.db.run('INSERT INTO projects (id, name, source, source_kind, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_kind, source) DO NOTHING', [
      id, p.name, p.source, p.sourceKind, now(),
    ]);
    return projectFromDb((await this.db.get<DbProject>('SELECT * FROM projects WHERE source_kind = ? AND source = ?', [p.sourceKind, p.source]))!);
  }

  /** Projects are cheap bookkeeping: drop one once its last workspace is gone. */
  async deleteProjectIfUnused(id: string): Promise<void> {
    await this.db.run('DELETE FROM projects WHERE id = ? AND NOT EXISTS (SELECT 1 FROM workspaces WHERE project_id = ?)', [id, id]);
  }

  // ---- workspaces

  /** One owner's workspaces; `undefined` lists everyone's (policies, admins). */
  async listWorkspaces(ownerId?: string): Promise<WorkspaceRow[]> {
    const rows = ownerId === undefined
      ? await this.db.all<DbWorkspace>(`${WORKSPACE_SELECT} ORDER BY w.created_at, w.id`)
      : await this.db.all<DbWorkspace>(`${WORKSPACE_SELECT} WHERE w.owner_id = ? ORDER BY w.created_at, w.id`, [ownerId]);
    return rows.map(workspaceFromDb);
  }

  async getWorkspace(id: string): Promise<WorkspaceRow | undefined> {
    const r = await this.db.get<DbWorkspace>(`${WORKSPACE_SELECT} WHERE w.id = ?`, [id]);
    return r && workspaceFromDb(r);
  }

  async nameTaken(name: string): Promise<boolean> {
    return !!(await this.db.get('SELECT 1 FROM workspaces WHERE name = ? OR id = ?', [name, name]));
  }

  async countRunning(ownerId: string): Promise<number> {
    const r = await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM workspaces WHERE owner_id = ? AND status IN ('creating', 'starting', 'running')", [ownerId]);
    return Number(r!.n);
  }

  async insertWorkspace(w: NewWorkspace): Promise<void> {
    const t = now();
    await this.db.run(
      `INSERT INTO workspaces (id, name, project_id, provider, image, branch, project_dir, status, resources, owner_id, size, auto_stop_seconds, allow_domains, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?)`,
      [w.id, w.name, w.projectId, w.provider, w.image, w.branch, w.projectDir, w.status, w.ownerId, w.size, w.autoStopSeconds, JSON.stringify(w.allowDomains ?? []), t, t],
    );
  }

  async updateWorkspace(id: string, patch: WorkspacePatch, q: Queryable = this.db): Promise<void> {
    const cols: Record<keyof WorkspacePatch, string> = {
      status: 'status',
      statusReason: 'status_reason',
      resources: 'resources',
      startedAt: 'started_at',
      provider: 'provider',
      image: 'image',
      projectDir: 'project_dir',
      uptimeSeconds: 'uptime_seconds',
      lastActivityAt: 'last_activity_at',
      stoppedAt: 'stopped_at',
      autoStopSeconds: 'auto_stop_seconds',
    };
    const sets: string[] = ['updated_at = ?'];
    const values: (string | number | null)[] = [now()];
    for (const [k, v] of Object.entries(patch) as [keyof WorkspacePatch, unknown][]) {
      sets.push(`${cols[k]} = ?`);
      values.push(k === 'resources' ? JSON.stringify(v) : (v as string | number | null));
    }
    await q.run(`UPDATE workspaces SET ${sets.join(', ')} WHERE id = ?`, [...values, id]);
  }

  /** Ends the current run: its seconds join the total, so cost keeps counting only while running. */
  async markStopped(id: string, status: WorkspaceStatus, reason: string | null = null): Promise<void> {
    await this.db.tx(async (q) => {
      const w = await q.get<{ started_at: string | null; uptime_seconds: number }>('SELECT started_at, uptime_seconds FROM workspaces WHERE id = ?', [id]);
      if (!w) return;
      const ran = w.started_at ? Math.max(0, Math.round((Date.now() - Date.parse(w.started_at)) / 1000)) : 0;
      await this.updateWorkspace(id, { status, statusReason: reason, startedAt: null, stoppedAt: now(), uptimeSeconds: Number(w.uptime_seconds) + ran }, q);
    });
  }

  async deleteWorkspace(id: string): Promise<void> {
    await this.db.tx(async (q) => {
      await q.run('DELETE FROM conversations WHERE workspace_id = ?', [id]);
      await q.run('DELETE FROM events WHERE workspace_id = ?', [id]);
      await q.run('DELETE FROM agent_configs WHERE workspace_id = ?', [id]);
      await q.run("DELETE FROM tokens WHERE workspace_id = ? AND scope = 'tunnel'", [id]);
      await q.run('DELETE FROM workspaces WHERE id = ?', [id]);
    });
  }

  // ---- agent settings (per user; workspace_id '' is the user's default)

  async listAgentConfigs(userId: string): Promise<AgentConfigRow[]> {
    const rows = await this.db.all<DbAgentConfig>('SELECT * FROM agent_configs WHERE user_id = ? ORDER BY agent, workspace_id', [userId]);
    return rows.map((r) => ({
      agent: r.agent,
      workspaceId: r.workspace_id,
      baseUrl: r.base_url,
      model: r.model,
      secrets: Object.fromEntries(Object.entries(JSON.parse(r.secrets) as Record<string, string>).map(([k, v]) => [k, this.box.open(v)])),
      updatedAt: r.updated_at,
    }));
  }

  async upsertAgentConfig(userId: string, c: Omit<AgentConfigRow, 'updatedAt'>): Promise<void> {
    const sealed = JSON.stringify(Object.fromEntries(Object.entries(c.secrets).map(([k, v]) => [k, this.box.seal(v)])));
    await this.db.run(
      `INSERT INTO agent_configs (user_id, agent, workspace_id, base_url, model, secrets, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id, agent, workspace_id) DO UPDATE SET base_url = excluded.base_url, model = excluded.model,
         secrets = excluded.secrets, updated_at = excluded.updated_at`,
      [userId, c.agent, c.workspaceId, c.baseUrl, c.model, sealed, now()],
    );
  }

  // ---- conversations (the daemon owns their content; the store remembers where each lives and its last summary)

  async insertConversation(c: Omit<ConversationRow, 'createdAt' | 'info'> & { info?: ConversationInfo }): Promise<void> {
    const t = now();
    await this.db.run('INSERT INTO conversations (id, workspace_id, agent, info, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING', [
      c.id, c.workspaceId, c.agent, c.info ? JSON.stringify(c.info) : null, t, t,
    ]);
  }

  async updateConversationInfo(workspaceId: string, info: ConversationInfo): Promise<void> {
    await this.db.run('UPDATE conversations SET info = ?, updated_at = ? WHERE id = ? AND workspace_id = ?', [JSON.stringify(info), now(), info.id, workspaceId]);
  }

  async listConversations(filter: { workspaceId?: string; ownerId?: string } = {}): Promise<ConversationRow[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.workspaceId) (where.push('c.workspace_id = ?'), params.push(filter.workspaceId));
    if (filter.ownerId) (where.push('w.owner_id = ?'), params.push(filter.ownerId));
    const rows = await this.db.all<DbConversation>(
      `SELECT c.* FROM conversations c JOIN workspaces w ON w.id = c.workspace_id ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY c.created_at, c.id`,
      params,
    );
    return rows.map((r) => ({ id: r.id, workspaceId: r.workspace_id, agent: r.agent, createdAt: r.created_at, info: r.info ? (JSON.parse(r.info) as ConversationInfo) : null }));
  }

  /** The workspace's approval rules file as the user gave it; null: the built-in rules only. */
  async gateRules(workspaceId: string): Promise<{ text: string | null; updatedAt: string | null }> {
    const row = await this.db.get<{ gate_rules: string | null; gate_rules_updated_at: string | null }>('SELECT gate_rules, gate_rules_updated_at FROM workspaces WHERE id = ?', [workspaceId]);
    return { text: row?.gate_rules ?? null, updatedAt: row?.gate_rules_updated_at ?? null };
  }

  async setGateRules(workspaceId: string, text: string | null): Promise<void> {
    await this.db.run('UPDATE workspaces SET gate_rules = ?, gate_rules_updated_at = ? WHERE id = ?', [text, now(), workspaceId]);
  }

  /**
   * The workspace's SSH host key pair, made on first use and kept sealed: the same key after down/up, a restore,
   * or a move to another provider, so the user's known_hosts never complains.
   */
  async sshHostKey(workspaceId: string, make: () => { privateKey: string; publicKey: string }): Promise<{ privateKey: string; publicKey: string }> {
    const row = await this.db.get<{ ssh_host_key: string | null }>('SELECT ssh_host_key FROM workspaces WHERE id = ?', [workspaceId]);
    if (row?.ssh_host_key) return JSON.parse(this.box.open(row.ssh_host_key)) as { privateKey: string; publicKey: string };
    const pair = make();
    // Only the first writer wins, so two concurrent first connections agree on one key.
    await this.db.run('UPDATE workspaces SET ssh_host_key = ? WHERE id = ? AND ssh_host_key IS NULL', [this.box.seal(JSON.stringify(pair)), workspaceId]);
    return this.sshHostKey(workspaceId, make);
  }

  /** One conversation by its exact id, if it is in one of this owner's workspaces. */
  async getConversation(id: string, ownerId: string): Promise<ConversationRow | undefined> {
    const r = await this.db.get<DbConversation>('SELECT c.* FROM conversations c JOIN workspaces w ON w.id = c.workspace_id WHERE c.id = ? AND w.owner_id = ?', [id, ownerId]);
    return r && { id: r.id, workspaceId: r.workspace_id, agent: r.agent, createdAt: r.created_at, info: r.info ? (JSON.parse(r.info) as ConversationInfo) : null };
  }

  /** Rows from before the control plane belong to the first admin (the local user). */
  async adoptOrphans(userId: string): Promise<void> {
    await this.db.run('UPDATE workspaces SET owner_id = ? WHERE owner_id IS NULL', [userId]);
    await this.db.run("UPDATE agent_configs SET user_id = ? WHERE user_id = ''", [userId]);
  }
}

export interface AgentConfigRow {
  agent: string;
  /** '' for the default that every workspace inherits. */
  workspaceId: string;
  baseUrl: string | null;
  model: string | null;
  /** Unsealed: only for injecting into the agent. */
  secrets: Record<string, string>;
  updatedAt: string;
}

export interface ConversationRow {
  id: string;
  workspaceId: string;
  agent: string;
  createdAt: string;
  info: ConversationInfo | null;
}

const WORKSPACE_SELECT = `
  SELECT w.*, p.name AS project_name, p.source AS project_source, p.source_kind AS project_source_kind
  FROM workspaces w JOIN projects p ON p.id = w.project_id`;

interface DbAgentConfig {
  agent: string;
  workspace_id: string;
  base_url: string | null;
  model: string | null;
  secrets: string;
  updated_at: string;
}
interface DbConversation {
  id: string;
  workspace_id: string;
  agent: string;
  info: string | null;
  created_at: string;
}
interface DbProvider {
  name: string;
  type: string;
  options: string;
  owner_id: string | null;
  created_at: string;
}
interface DbProject {
  id: string;
  name: string;
  source: string;
  source_kind: ProjectInfo['sourceKind'];
}
interface DbWorkspace {
  id: string;
  name: string | null;
  project_id: string;
  project_name: string;
  project_source: string;
  project_source_kind: ProjectInfo['sourceKind'];
  provider: string;
  image: string;
  branch: string | null;
  project_dir: string;
  status: WorkspaceStatus;
  status_reason: string | null;
  resources: string;
  owner_id: string | null;
  size: string;
  auto_stop_seconds: number | null;
  allow_domains: string;
  uptime_seconds: number;
  last_activity_at: string | null;
  stopped_at: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
}

function projectFromDb(r: DbProject): ProjectInfo {
  return { id: r.id, name: r.name, source: r.source, sourceKind: r.source_kind };
}

function workspaceFromDb(r: DbWorkspace): WorkspaceRow {
  return {
    id: r.id,
    name: r.name,
    project: { id: r.project_id, name: r.project_name, source: r.project_source, sourceKind: r.project_source_kind },
    provider: r.provider,
    image: r.image,
    branch: r.branch,
    projectDir: r.project_dir,
    status: r.status,
    statusReason: r.status_reason,
    resources: JSON.parse(r.resources) as ResourceRefs,
    ownerId: r.owner_id,
    size: r.size,
    autoStopSeconds: r.auto_stop_seconds === null ? null : Number(r.auto_stop_seconds),
    allowDomains: JSON.parse(r.allow_domains ?? '[]') as string[],
    uptimeSeconds: Number(r.uptime_seconds),
    lastActivityAt: r.last_activity_at,
    stoppedAt: r.stopped_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
  };
}
