/**
 * @module The one database seam: embedded SQLite by default, PostgreSQL for teams (`postgres.ts`). Callers write
 * portable SQL with `?` placeholders; each backend adapts it. Everything is async so both look the same.
 */
import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MIGRATIONS } from './migrations.js';
import { UserError } from '../protocol/errors.js';

export type Dialect = 'sqlite' | 'postgres';
export type Param = string | number | bigint | null | Buffer;

export interface Queryable {
  readonly dialect: Dialect;
  all<T>(sql: string, params?: Param[]): Promise<T[]>;
  get<T>(sql: string, params?: Param[]): Promise<T | undefined>;
  /** INSERT/UPDATE/DELETE; `changes` is the number of rows affected. */
  run(sql: string, params?: Param[]): Promise<{ changes: number }>;
}

export interface TxOptions {
  /**
   * The data's source still holds it and sends it again if it is missing after a crash (events from a workspace's
   * own log, which the daemon resends from what the store says it has): commit without waiting for the disk. A
   * power loss can then lose the last such commits, never corrupt the store; the source fills them in.
   */
  replayable?: boolean;
}

export interface Db extends Queryable {
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>, opts?: TxOptions): Promise<T>;
  close(): Promise<void>;
}

/** `sqlite:PATH`, a bare path, or `postgres://…` / `postgresql://…`. */
export async function connectDb(url: string): Promise<Db> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { connectPostgres } = await import('./postgres.js');
    return connectPostgres(url);
  }
  return openSqlite(url.replace(/^sqlite:/, ''));
}

export function defaultDbUrl(home: string): string {
  return `sqlite:${join(home, 'state.db')}`;
}

export function schemaTooNew(found: number): UserError {
  return new UserError(
    'invalid_argument',
    `The state store was written by a newer claude-vm (schema ${found}, this one knows ${MIGRATIONS.length}).`,
    'Upgrade claude-vm, or point it at another database.',
  );
}

class SqliteDb implements Db {
  readonly dialect = 'sqlite' as const;
  /** Serializes transactions: SQLite has one connection here, and an async transaction must not interleave. */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: Database.Database) {}

  private async idle(): Promise<void> {
    let prev: Promise<unknown>;
    do {
      prev = this.lock;
      await prev.catch(() => undefined);
    } while (prev !== this.lock);
  }

  async all<T>(sql: string, params: Param[] = []): Promise<T[]> {
    await this.idle();
    return this.db.prepare(sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: Param[] = []): Promise<T | undefined> {
    await this.idle();
    return this.db.prepare(sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: Param[] = []): Promise<{ changes: number }> {
    await this.idle();
    return { changes: this.db.prepare(sql).run(...params).changes };
  }

  tx<T>(fn: (q: Queryable) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    const inner: Queryable = {
      dialect: 'sqlite',
      all: async <R>(sql: string, params: Param[] = []) => this.db.prepare(sql).all(...params) as R[],
      get: async <R>(sql: string, params: Param[] = []) => this.db.prepare(sql).get(...params) as R | undefined,
      run: async (sql: string, params: Param[] = []) => ({ changes: this.db.prepare(sql).run(...params).changes }),
    };
    // Chained on the previous holder directly: waiting in idle() would wait on this very transaction.
    const result = this.lock.catch(() => undefined).then(async () => {
      // Per connection, and nothing else runs on it while this transaction holds the lock.
      if (opts.replayable) this.db.pragma('synchronous = NORMAL');
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(inner);
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        this.db.exec('ROLLBACK');
        throw e;
      } finally {
        if (opts.replayable) this.db.pragma('synchronous = FULL');
      }
    });
    this.lock = result;
    return result;
  }

  async close(): Promise<void> {
    await this.idle();
    this.db.close();
  }

  migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) throw schemaTooNew(current);
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }
}

export function openSqlite(path: string): Db {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const raw = new Database(path);
  // Sealed secrets and token hashes live here: owner only (the WAL and shm files follow the same umask).
  chmodSync(path, 0o600);
  // WAL lets a long `workspace up` in one terminal coexist with `list` in another.
  raw.pragma('journal_mode = WAL');
  raw.pragma('busy_timeout = 5000');
  raw.pragma('foreign_keys = ON');
  const db = new SqliteDb(raw);
  db.migrate();
  return db;
}
