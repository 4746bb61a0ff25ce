/** @module Versioned schema migrations. Append only: never edit a shipped migration, add the next one. */

/** Portable SQL (TEXT timestamps in ISO-8601, no engine-specific types) so PostgreSQL can run the same list later. */
export const MIGRATIONS: readonly string[] = [
  // 1: the four entities of seed 003.
  `
  CREATE TABLE providers (
    name        TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    options     TEXT NOT NULL,          -- JSON; secret values sealed with the home's key
    created_at  TEXT NOT NULL
  );
  CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (source_kind, source)
  );
  CREATE TABLE workspaces (
    id            TEXT PRIMARY KEY,
    name          TEXT UNIQUE,
    project_id    TEXT NOT NULL REFERENCES projects(id),
    provider      TEXT NOT NULL REFERENCES providers(name),
    image         TEXT NOT NULL,
    branch        TEXT,
    project_dir   TEXT NOT NULL,
    status        TEXT NOT NULL,
    status_reason TEXT,
    resources     TEXT NOT NULL DEFAULT '{}',  -- provider-owned ids (container, volume, directory)
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    started_at    TEXT
  );
  CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent        TEXT NOT NULL,
    title        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
  );
  CREATE INDEX workspaces_project ON workspaces(project_id);
  CREATE INDEX conversations_workspace ON conversations(workspace_id);
  `,
  // 2: agent settings, global (workspace_id '') or per workspace; secrets sealed.
  `
  CREATE TABLE agent_configs (
    agent        TEXT NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    base_url     TEXT,
    model        TEXT,
    secrets      TEXT NOT NULL DEFAULT '{}',
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (agent, workspace_id)
  );
  `,
  // 3: the control plane. Users and their tokens (hashed), ownership, the event store fed by workspace tunnels,
  // the audit log, policy leases, and what cost accounting and idle stop need.
  `
  CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    is_admin    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
  );
  CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,  -- sha256 of the secret; the secret itself is shown once and never stored
    scope        TEXT NOT NULL,         -- api | tunnel | session
    workspace_id TEXT,                  -- tunnel tokens open only this workspace's tunnel
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT,
    created_at   TEXT NOT NULL
  );
  CREATE INDEX tokens_user ON tokens(user_id);
  ALTER TABLE workspaces ADD COLUMN owner_id TEXT;
  ALTER TABLE workspaces ADD COLUMN size TEXT NOT NULL DEFAULT 'medium';
  ALTER TABLE workspaces ADD COLUMN auto_stop_seconds INTEGER;
  ALTER TABLE workspaces ADD COLUMN uptime_seconds INTEGER NOT NULL DEFAULT 0;  -- of finished runs
  ALTER TABLE workspaces ADD COLUMN last_activity_at TEXT;
  ALTER TABLE workspaces ADD COLUMN stopped_at TEXT;
  ALTER TABLE workspaces ADD COLUMN launched_at TEXT;
  CREATE INDEX workspaces_owner ON workspaces(owner_id);
  ALTER TABLE providers ADD COLUMN owner_id TEXT;  -- NULL: shared by every user (added by an admin)
  ALTER TABLE conversations ADD COLUMN info TEXT;  -- the daemon's last summary, served while the workspace is away
  CREATE TABLE events (
    workspace_id    TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    time            TEXT NOT NULL,
    type            TEXT NOT NULL,
    data            TEXT NOT NULL,
    PRIMARY KEY (workspace_id, conversation_id, seq)
  );
  CREATE TABLE audit_log (
    id       TEXT PRIMARY KEY,
    at       TEXT NOT NULL,
    user_id  TEXT,
    action   TEXT NOT NULL,
    target   TEXT,
    detail   TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX audit_log_at ON audit_log(at);
  CREATE TABLE launches (
    user_id TEXT NOT NULL,
    at      TEXT NOT NULL
  );
  CREATE INDEX launches_user ON launches(user_id, at);
  CREATE TABLE tunnels (
    workspace_id TEXT PRIMARY KEY,  -- which control-plane process holds this workspace's tunnel
    instance     TEXT NOT NULL,
    url          TEXT NOT NULL,     -- where that process takes forwarded daemon calls
    connected_at TEXT NOT NULL
  );
  CREATE TABLE leases (
    key        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  CREATE TABLE agent_configs_v3 (
    user_id      TEXT NOT NULL DEFAULT '',
    agent        TEXT NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    base_url     TEXT,
    model        TEXT,
    secrets      TEXT NOT NULL DEFAULT '{}',
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, agent, workspace_id)
  );
  INSERT INTO agent_configs_v3 (user_id, agent, workspace_id, base_url, model, secrets, updated_at)
    SELECT '', agent, workspace_id, base_url, model, secrets, updated_at FROM agent_configs;
  DROP TABLE agent_configs;
  ALTER TABLE agent_configs_v3 RENAME TO agent_configs;
  `,
  // 4: SSH. Users' public keys, and each workspace's host key (sealed), so it never changes under the user.
  `
  CREATE TABLE ssh_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, fingerprint)
  );
  ALTER TABLE workspaces ADD COLUMN ssh_host_key TEXT;
  `,
  // 5: notifications (a webhook per user, Web Push subscriptions) and server-wide settings (the VAPID key pair).
  `
  CREATE TABLE notification_settings (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    webhook_url TEXT,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE push_subscriptions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint     TEXT NOT NULL UNIQUE,
    subscription TEXT NOT NULL,  -- sealed: its keys let anyone push to that browser
    created_at   TEXT NOT NULL
  );
  CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL          -- sealed when secret
  );
  `,
  // 6: each workspace's approval rules (its project's .claude-vm/gate-rules at creation, or \`workspace rules --set\`).
  `
  ALTER TABLE workspaces ADD COLUMN gate_rules TEXT;  -- NULL: the built-in rules only
  ALTER TABLE workspaces ADD COLUMN gate_rules_updated_at TEXT;
  `,
  // 7: what `workspace up --allow-domain` added to a workspace's egress allowlist (JSON array), kept for recreation.
  `
  ALTER TABLE workspaces ADD COLUMN allow_domains TEXT NOT NULL DEFAULT '[]';
  `,
];
