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
];
