/** @module Opens the embedded SQLite state store under $CLAUDE_VM_HOME and brings its schema up to date. */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS } from './migrations.js';
import { UserError } from '../protocol/errors.js';

export type Db = Database.Database;

export function openDb(home: string): Db {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const db = new Database(join(home, 'state.db'));
  // WAL lets a long `workspace up` in one terminal coexist with `list` in another.
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new UserError(
      'invalid_argument',
      `The state store was written by a newer claude-vm (schema ${current}, this one knows ${MIGRATIONS.length}).`,
      'Upgrade claude-vm, or point CLAUDE_VM_HOME at another directory.',
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
