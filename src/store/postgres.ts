/** @module The PostgreSQL backend of the database seam, so several control-plane processes can share one state store. */
import pg from 'pg';
import { MIGRATIONS } from './migrations.js';
import { schemaTooNew, type Db, type Param, type Queryable, type TxOptions } from './db.js';

/** Held while migrating, so processes starting together apply each migration once ("claude-v" in ASCII, as int8). */
const MIGRATION_LOCK = '7164208264063036790';

/** Rewrites `?` placeholders to `$1, $2, …`, leaving quoted strings, quoted identifiers and `--` comments alone. */
export function toPgPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      // A doubled quote inside ('it''s') just closes and reopens, which this scan handles for free.
      const end = sql.indexOf(c, i + 1);
      const stop = end < 0 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '?') {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  return out;
}

type Client = pg.Pool | pg.PoolClient;

function queryable(client: Client): Queryable {
  const query = (sql: string, params: Param[] = []) => client.query(toPgPlaceholders(sql), params);
  return {
    dialect: 'postgres',
    all: async <T>(sql: string, params?: Param[]) => (await query(sql, params)).rows as T[],
    get: async <T>(sql: string, params?: Param[]) => (await query(sql, params)).rows[0] as T | undefined,
    run: async (sql: string, params?: Param[]) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
  };
}

/**
 * Checks out a client for `fn`. A checked-out client losing its server would emit an unhandled 'error' and crash the
 * process; with a listener its next query fails instead. A client that failed (or whose ROLLBACK did) is discarded.
 */
async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient, fail: (err: Error) => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const fail = (err: Error) => void (broken ??= err);
  client.on('error', fail);
  try {
    return await fn(client, fail);
  } finally {
    client.removeListener('error', fail);
    client.release(broken);
  }
}

/** Runs `fn` inside BEGIN/COMMIT on one client: committed if it resolves, rolled back if it throws. */
function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, opts: TxOptions = {}): Promise<T> {
  return withClient(pool, async (client, fail) => {
    await client.query('BEGIN');
    try {
      // See TxOptions: the commit returns before the WAL is flushed; this transaction only.
      if (opts.replayable) await client.query('SET LOCAL synchronous_commit = off');
      const r = await fn(client);
      await client.query('COMMIT');
      return r;
    } catch (e) {
      await client.query('ROLLBACK').catch(fail);
      throw e;
    }
  });
}

/** Applies the missing MIGRATIONS, each in its own transaction, under an advisory lock shared by every process. */
function migrate(pool: pg.Pool): Promise<void> {
  return withClient(pool, async (client, fail) => {
    await client.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK})`);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      const row = (await client.query<{ version: number | null }>('SELECT MAX(version) AS version FROM schema_version')).rows[0];
      let current = row?.version ?? null;
      if (current === null) {
        await client.query('INSERT INTO schema_version (version) VALUES (0)');
        current = 0;
      }
      if (current > MIGRATIONS.length) throw schemaTooNew(current);
      for (let v = current; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[v]!); // simple protocol: runs every statement of the migration
          await client.query('UPDATE schema_version SET version = $1', [v + 1]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(fail);
          throw e;
        }
      }
    } finally {
      // If this fails the client is discarded, and closing its session releases the lock.
      await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`).catch(fail);
    }
  });
}

/** Opens a pool on `url` and brings the schema up to date. Never logs the URL: it may hold a password. */
export async function connectPostgres(url: string): Promise<Db> {
  const types = new pg.TypeOverrides();
  // COUNT(*) and BIGINT are int8: numbers, like SQLite gives (ids and counts stay far below 2^53).
  types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));
  const pool = new pg.Pool({ connectionString: url, types });
  // An idle client losing its server must not crash the process; the pool drops it and the next query reports.
  pool.on('error', () => undefined);
  try {
    await migrate(pool);
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
  return {
    ...queryable(pool),
    tx: (fn, opts) => inTransaction(pool, (client) => fn(queryable(client)), opts),
    close: () => pool.end(),
  };
}

/** NOTIFY `channel` with `payload`; inside `tx` it is delivered on commit. PostgreSQL only. */
export async function notifyChannel(q: Queryable, channel: string, payload: string): Promise<void> {
  await q.run('SELECT pg_notify(?, ?)', [channel, payload]);
}
