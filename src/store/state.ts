/**
 * @module Typed access to the state store. Async on purpose: the control plane will put PostgreSQL behind the
 * same methods, so callers must not rely on SQLite being synchronous.
 */
import type { Db } from './db.js';
import { openDb } from './db.js';
import { SecretBox, isSecretOption, MASK } from './secrets.js';
import type { ProjectInfo, WorkspaceInfo, WorkspaceStatus } from '../protocol/types.js';
import type { ResourceRefs } from '../providers/provider.js';

export interface ProviderRow {
  name: string;
  type: string;
  /** Unsealed option values: only for handing to the provider, never for display. */
  options: Record<string, string>;
  createdAt: string;
}

export interface WorkspaceRow extends Omit<WorkspaceInfo, 'providerType'> {
  resources: ResourceRefs;
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
}

export type WorkspacePatch = Partial<Pick<WorkspaceRow, 'status' | 'statusReason' | 'resources' | 'startedAt' | 'provider' | 'image' | 'projectDir'>>;

const now = (): string => new Date().toISOString();

export class StateStore {
  private constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  static open(home: string): StateStore {
    return new StateStore(openDb(home), SecretBox.forHome(home));
  }

  close(): void {
    this.db.close();
  }

  // ---- providers

  async listProviders(): Promise<ProviderRow[]> {
    const rows = this.db.prepare('SELECT * FROM providers ORDER BY name').all() as DbProvider[];
    return rows.map((r) => this.providerFromDb(r));
  }

  async getProvider(name: string): Promise<ProviderRow | undefined> {
    const r = this.db.prepare('SELECT * FROM providers WHERE name = ?').get(name) as DbProvider | undefined;
    return r && this.providerFromDb(r);
  }

  async insertProvider(p: Omit<ProviderRow, 'createdAt'>): Promise<void> {
    this.db.prepare('INSERT INTO providers (name, type, options, created_at) VALUES (?, ?, ?, ?)').run(p.name, p.type, this.sealOptions(p.options), now());
  }

  async updateProviderOptions(name: string, options: Record<string, string>): Promise<void> {
    this.db.prepare('UPDATE providers SET options = ? WHERE name = ?').run(this.sealOptions(options), name);
  }

  async deleteProvider(name: string): Promise<void> {
    this.db.prepare('DELETE FROM providers WHERE name = ?').run(name);
  }

  async countWorkspacesOn(provider: string): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM workspaces WHERE provider = ?').get(provider) as { n: number }).n;
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
      createdAt: r.created_at,
    };
  }

  // ---- projects

  async findOrCreateProject(p: Omit<ProjectInfo, 'id'>, newId: () => string): Promise<ProjectInfo> {
    const found = this.db.prepare('SELECT * FROM projects WHERE source_kind = ? AND source = ?').get(p.sourceKind, p.source) as DbProject | undefined;
    if (found) return projectFromDb(found);
    const id = newId();
    this.db.prepare('INSERT INTO projects (id, name, source, source_kind, created_at) VALUES (?, ?, ?, ?, ?)').run(id, p.name, p.source, p.sourceKind, now());
    return { id, ...p };
  }

  /** Projects are cheap bookkeeping: drop one once its last workspace is gone. */
  async deleteProjectIfUnused(id: string): Promise<void> {
    this.db.prepare('DELETE FROM projects WHERE id = ? AND NOT EXISTS (SELECT 1 FROM workspaces WHERE project_id = ?)').run(id, id);
  }

  // ---- workspaces

  async listWorkspaces(): Promise<WorkspaceRow[]> {
    const rows = this.db.prepare(`${WORKSPACE_SELECT} ORDER BY w.created_at`).all() as DbWorkspace[];
    return rows.map(workspaceFromDb);
  }

  async getWorkspace(id: string): Promise<WorkspaceRow | undefined> {
    const r = this.db.prepare(`${WORKSPACE_SELECT} WHERE w.id = ?`).get(id) as DbWorkspace | undefined;
    return r && workspaceFromDb(r);
  }

  async nameTaken(name: string): Promise<boolean> {
    return !!this.db.prepare('SELECT 1 FROM workspaces WHERE name = ? OR id = ?').get(name, name);
  }

  async insertWorkspace(w: NewWorkspace): Promise<void> {
    const t = now();
    this.db
      .prepare(
        `INSERT INTO workspaces (id, name, project_id, provider, image, branch, project_dir, status, resources, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)`,
      )
      .run(w.id, w.name, w.projectId, w.provider, w.image, w.branch, w.projectDir, w.status, t, t);
  }

  async updateWorkspace(id: string, patch: WorkspacePatch): Promise<void> {
    const cols: Record<keyof WorkspacePatch, string> = {
      status: 'status',
      statusReason: 'status_reason',
      resources: 'resources',
      startedAt: 'started_at',
      provider: 'provider',
      image: 'image',
      projectDir: 'project_dir',
    };
    const sets: string[] = ['updated_at = ?'];
    const values: unknown[] = [now()];
    for (const [k, v] of Object.entries(patch) as [keyof WorkspacePatch, unknown][]) {
      sets.push(`${cols[k]} = ?`);
      values.push(k === 'resources' ? JSON.stringify(v) : v);
    }
    this.db.prepare(`UPDATE workspaces SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
  }

  async deleteWorkspace(id: string): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM conversations WHERE workspace_id = ?').run(id);
      this.db.prepare("DELETE FROM agent_configs WHERE workspace_id = ?").run(id);
      this.db.prepare('DELETE FROM workspaces WHERE id = ?').run(id);
    })();
  }

  // ---- agent settings

  async listAgentConfigs(): Promise<AgentConfigRow[]> {
    const rows = this.db.prepare('SELECT * FROM agent_configs ORDER BY agent, workspace_id').all() as DbAgentConfig[];
    return rows.map((r) => ({
      agent: r.agent,
      workspaceId: r.workspace_id,
      baseUrl: r.base_url,
      model: r.model,
      secrets: Object.fromEntries(Object.entries(JSON.parse(r.secrets) as Record<string, string>).map(([k, v]) => [k, this.box.open(v)])),
      updatedAt: r.updated_at,
    }));
  }

  async upsertAgentConfig(c: Omit<AgentConfigRow, 'updatedAt'>): Promise<void> {
    const sealed = JSON.stringify(Object.fromEntries(Object.entries(c.secrets).map(([k, v]) => [k, this.box.seal(v)])));
    this.db
      .prepare(
        `INSERT INTO agent_configs (agent, workspace_id, base_url, model, secrets, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent, workspace_id) DO UPDATE SET base_url = excluded.base_url, model = excluded.model,
           secrets = excluded.secrets, updated_at = excluded.updated_at`,
      )
      .run(c.agent, c.workspaceId, c.baseUrl, c.model, sealed, now());
  }

  // ---- conversations (the daemon owns their content; the store remembers where each one lives)

  async insertConversation(c: Omit<ConversationRow, 'createdAt'>): Promise<void> {
    const t = now();
    this.db.prepare('INSERT INTO conversations (id, workspace_id, agent, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(c.id, c.workspaceId, c.agent, t, t);
  }

  async listConversations(workspaceId?: string): Promise<ConversationRow[]> {
    const rows = (workspaceId
      ? this.db.prepare('SELECT * FROM conversations WHERE workspace_id = ? ORDER BY created_at').all(workspaceId)
      : this.db.prepare('SELECT * FROM conversations ORDER BY created_at').all()) as DbConversation[];
    return rows.map((r) => ({ id: r.id, workspaceId: r.workspace_id, agent: r.agent, createdAt: r.created_at }));
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
  created_at: string;
}
interface DbProvider {
  name: string;
  type: string;
  options: string;
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
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
  };
}
