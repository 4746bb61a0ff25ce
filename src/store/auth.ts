/**
 * @module Users, their tokens and the audit log. A token's secret is shown once and only its SHA-256 is kept, so
 * a copy of the database opens nothing. Deleting a user deletes their tokens in the same statement (cascade).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db.js';
import { newId } from './ids.js';
import { now } from './state.js';

/** api: full access as the user; read: GET only; tunnel: one workspace's tunnel; session: the web UI's cookie; login: a one-time link that becomes a session. */
export type TokenScope = 'api' | 'read' | 'tunnel' | 'session' | 'login';

export interface UserRow {
  id: string;
  name: string;
  isAdmin: boolean;
  createdAt: string;
}

export interface TokenRow {
  id: string;
  userId: string;
  name: string;
  scope: TokenScope;
  workspaceId: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

export interface SshKeyRow {
  id: string;
  userId: string;
  name: string;
  publicKey: string;
  fingerprint: string;
  createdAt: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  userId: string | null;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
}

/** `cvm_` + 32 random bytes: recognisable by secret scanners, unguessable. */
export function newTokenSecret(): string {
  return `cvm_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export class AuthStore {
  constructor(private readonly db: Db) {}

  async insertUser(name: string, isAdmin: boolean): Promise<UserRow> {
    const u: UserRow = { id: newId('usr'), name, isAdmin, createdAt: now() };
    await this.db.run('INSERT INTO users (id, name, is_admin, created_at) VALUES (?, ?, ?, ?)', [u.id, u.name, u.isAdmin ? 1 : 0, u.createdAt]);
    return u;
  }

  async listUsers(): Promise<UserRow[]> {
    return (await this.db.all<DbUser>('SELECT * FROM users ORDER BY created_at, name')).map(userFromDb);
  }

  async getUser(idOrName: string): Promise<UserRow | undefined> {
    const r = await this.db.get<DbUser>('SELECT * FROM users WHERE id = ? OR name = ?', [idOrName, idOrName]);
    return r && userFromDb(r);
  }

  async deleteUser(id: string): Promise<void> {
    await this.db.tx(async (q) => {
      await q.run('DELETE FROM tokens WHERE user_id = ?', [id]);
      await q.run('DELETE FROM ssh_keys WHERE user_id = ?', [id]);
      await q.run('DELETE FROM users WHERE id = ?', [id]);
    });
  }

  /** Creates a token and returns its secret: the only time the secret exists outside the caller. */
  async createToken(t: { userId: string; name: string; scope: TokenScope; workspaceId?: string | null; expiresAt?: string | null }): Promise<{ token: TokenRow; secret: string }> {
    const secret = newTokenSecret();
    const token: TokenRow = {
      id: newId('tok'), userId: t.userId, name: t.name, scope: t.scope, workspaceId: t.workspaceId ?? null,
      expiresAt: t.expiresAt ?? null, revokedAt: null, lastUsedAt: null, createdAt: now(),
    };
    await this.db.run(
      'INSERT INTO tokens (id, user_id, name, hash, scope, workspace_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [token.id, token.userId, token.name, hashToken(secret), token.scope, token.workspaceId, token.expiresAt, token.createdAt],
    );
    return { token, secret };
  }

  /** The live token and its user for a presented secret; undefined when unknown, revoked, expired or orphaned. */
  async verify(secret: string): Promise<{ token: TokenRow; user: UserRow } | undefined> {
    const r = await this.db.get<DbToken & { user_name: string; user_is_admin: number; user_created_at: string }>(
      `SELECT t.*, u.name AS user_name, u.is_admin AS user_is_admin, u.created_at AS user_created_at
       FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`,
      [hashToken(secret)],
    );
    if (!r) return undefined;
    const token = tokenFromDb(r);
    if (token.revokedAt) return undefined;
    if (token.expiresAt && Date.parse(token.expiresAt) <= Date.now()) return undefined;
    return { token, user: { id: r.user_id, name: r.user_name, isAdmin: !!Number(r.user_is_admin), createdAt: r.user_created_at } };
  }

  async touch(tokenId: string): Promise<void> {
    await this.db.run('UPDATE tokens SET last_used_at = ? WHERE id = ?', [now(), tokenId]);
  }

  async listTokens(userId: string): Promise<TokenRow[]> {
    return (await this.db.all<DbToken>("SELECT * FROM tokens WHERE user_id = ? AND scope IN ('api', 'read') ORDER BY created_at, id", [userId])).map(tokenFromDb);
  }

  async revokeToken(userId: string, tokenId: string): Promise<boolean> {
    const r = await this.db.run('UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL', [now(), tokenId, userId]);
    return r.changes > 0;
  }

  /** A workspace gets one live tunnel token; issuing a new one retires the old. */
  async replaceTunnelToken(userId: string, workspaceId: string): Promise<string> {
    await this.db.run("DELETE FROM tokens WHERE scope = 'tunnel' AND workspace_id = ?", [workspaceId]);
    return (await this.createToken({ userId, name: `tunnel ${workspaceId}`, scope: 'tunnel', workspaceId })).secret;
  }

  async deleteSessionTokens(before: string): Promise<void> {
    await this.db.run("DELETE FROM tokens WHERE scope = 'session' AND expires_at < ?", [before]);
  }

  async addSshKey(userId: string, k: { name: string; publicKey: string; fingerprint: string }): Promise<SshKeyRow> {
    const row: SshKeyRow = { id: newId('key'), userId, name: k.name, publicKey: k.publicKey, fingerprint: k.fingerprint, createdAt: now() };
    const r = await this.db.run('INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, fingerprint) DO NOTHING', [
      row.id, userId, row.name, row.publicKey, row.fingerprint, row.createdAt,
    ]);
    if (r.changes === 0) return (await this.listSshKeys(userId)).find((x) => x.fingerprint === k.fingerprint)!;
    return row;
  }

  async listSshKeys(userId: string): Promise<SshKeyRow[]> {
    const rows = await this.db.all<{ id: string; user_id: string; name: string; public_key: string; fingerprint: string; created_at: string }>(
      'SELECT * FROM ssh_keys WHERE user_id = ? ORDER BY created_at, id', [userId],
    );
    return rows.map((r) => ({ id: r.id, userId: r.user_id, name: r.name, publicKey: r.public_key, fingerprint: r.fingerprint, createdAt: r.created_at }));
  }

  async removeSshKey(userId: string, idOrFingerprint: string): Promise<boolean> {
    const r = await this.db.run('DELETE FROM ssh_keys WHERE user_id = ? AND (id = ? OR fingerprint = ?)', [userId, idOrFingerprint, idOrFingerprint]);
    return r.changes > 0;
  }

  async audit(e: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    await this.db.run('INSERT INTO audit_log (id, at, user_id, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)', [
      newId('aud'), now(), e.userId, e.action, e.target, JSON.stringify(e.detail),
    ]);
  }

  async listAudit(filter: { userId?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    const limit = Math.min(filter.limit ?? 100, 1000);
    const rows = filter.userId
      ? await this.db.all<DbAudit>('SELECT * FROM audit_log WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?', [filter.userId, limit])
      : await this.db.all<DbAudit>('SELECT * FROM audit_log ORDER BY at DESC, id DESC LIMIT ?', [limit]);
    return rows.map((r) => ({ id: r.id, at: r.at, userId: r.user_id, action: r.action, target: r.target, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }
}

interface DbUser {
  id: string;
  name: string;
  is_admin: number;
  created_at: string;
}
interface DbToken {
  id: string;
  user_id: string;
  name: string;
  scope: TokenScope;
  workspace_id: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  created_at: string;
}
interface DbAudit {
  id: string;
  at: string;
  user_id: string | null;
  action: string;
  target: string | null;
  detail: string;
}

function userFromDb(r: DbUser): UserRow {
  return { id: r.id, name: r.name, isAdmin: !!Number(r.is_admin), createdAt: r.created_at };
}

function tokenFromDb(r: DbToken): TokenRow {
  return {
    id: r.id, userId: r.user_id, name: r.name, scope: r.scope, workspaceId: r.workspace_id, expiresAt: r.expires_at,
    revokedAt: r.revoked_at, lastUsedAt: r.last_used_at, createdAt: r.created_at,
  };
}
