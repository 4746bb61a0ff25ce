/** The database seam behaves the same on SQLite and on a real PostgreSQL: migrations, placeholders, upserts, transactions. */
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDb, type Db } from '../src/store/db.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { connectPostgres } from '../src/store/postgres.js';
import { freshDatabase, testPostgresUrl } from './support/postgres.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvm-db-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

interface Backend {
  name: 'sqlite' | 'postgres';
  /** A URL of an empty database, or undefined when the test was skipped. */
  fresh(t: TestContext): Promise<string | undefined>;
  version(db: Db): Promise<number | undefined>;
  setVersion(db: Db, v: number): Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    fresh: async () => `sqlite:${join(tmp, `${++n}`, 'state.db')}`,
    version: async (db) => (await db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version,
    setVersion: async (db, v) => void (await db.run(`PRAGMA user_version = ${v}`)),
  },
  {
    name: 'postgres',
    fresh: async (t) => {
      const server = await testPostgresUrl(); // fails the test, with the fix, when no server is configured
      if (!server) return void t.skip('CLAUDE_VM_SKIP_PG=1');
      return freshDatabase(server);
    },
    version: async (db) => (await db.get<{ version: number }>('SELECT version FROM schema_version'))?.version,
    setVersion: async (db, v) => void (await db.run('UPDATE schema_version SET version = ?', [v])),
  },
];

/** Connects to a fresh database of this backend with a `kv` table, runs `fn`, and closes. */
async function withDb(b: Backend, t: TestContext, fn: (db: Db, url: string) => Promise<void>): Promise<void> {
  const url = await b.fresh(t);
  if (!url) return;
  const db = await connectDb(url);
  try {
    await db.run('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n INTEGER NOT NULL DEFAULT 0, big BIGINT)');
    await fn(db, url);
  } finally {
    await db.close();
  }
}

for (const b of backends) {
  test(`${b.name}: migrations apply once; connecting again changes nothing`, async (t) => {
    await withDb(b, t, async (db, url) => {
      assert.equal(db.dialect, b.name);
      assert.equal(await b.version(db), MIGRATIONS.length);
      await db.run("INSERT INTO providers (name, type, options, created_at) VALUES ('p', 'docker', '{}', 'now')");
      const again = await connectDb(url);
      try {
        assert.equal(await b.version(again), MIGRATIONS.length);
        assert.deepEqual(await again.all('SELECT name, type FROM providers'), [{ name: 'p', type: 'docker' }]);
      } finally {
        await again.close();
      }
    });
  });

  test(`${b.name}: ? placeholders, but not a '?' inside a string literal`, async (t) => {
    await withDb(b, t, async (db) => {
      assert.deepEqual(await db.get("SELECT ? AS a, 'what?' AS q, 'it''s ?' AS r, ? AS b", ['x', 'y']), {
        a: 'x',
        q: 'what?',
        r: "it's ?",
        b: 'y',
      });
      assert.deepEqual(await db.run("INSERT INTO kv (k, v) VALUES (?, 'why?'), (?, ?)", ['one', 'two', '2?']), { changes: 2 });
      assert.deepEqual(await db.all('SELECT k, v FROM kv WHERE k IN (?, ?) ORDER BY k', ['one', 'two']), [
        { k: 'one', v: 'why?' },
        { k: 'two', v: '2?' },
      ]);
      assert.equal(await db.get('SELECT k FROM kv WHERE k = ?', ['none']), undefined);
    });
  });

  test(`${b.name}: INSERT … ON CONFLICT … DO UPDATE upserts`, async (t) => {
    await withDb(b, t, async (db) => {
      const upsert = (v: string) =>
        db.run('INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = kv.n + 1', ['key', v]);
      assert.deepEqual(await upsert('first'), { changes: 1 });
      assert.deepEqual(await upsert('second'), { changes: 1 });
      assert.deepEqual(await db.all('SELECT k, v, n FROM kv'), [{ k: 'key', v: 'second', n: 1 }]);
    });
  });

  test(`${b.name}: COUNT(*) and BIGINT come back as numbers`, async (t) => {
    await withDb(b, t, async (db) => {
      for (const k of ['a', 'b', 'c']) await db.run('INSERT INTO kv (k, big) VALUES (?, ?)', [k, 9007199254740991]);
      assert.deepEqual(await db.get('SELECT COUNT(*) AS count FROM kv'), { count: 3 });
      assert.deepEqual(await db.get("SELECT big FROM kv WHERE k = 'a'"), { big: 9007199254740991 });
      assert.equal(await db.run('DELETE FROM kv WHERE k <> ?', ['a']).then((r) => r.changes), 2);
    });
  });

  test(`${b.name}: a transaction that throws is rolled back, one that resolves is committed`, async (t) => {
    await withDb(b, t, async (db) => {
      await assert.rejects(
        db.tx(async (q) => {
          assert.equal(q.dialect, b.name);
          await q.run('INSERT INTO kv (k, v) VALUES (?, ?)', ['lost', 'x']);
          assert.deepEqual(await q.get('SELECT v FROM kv WHERE k = ?', ['lost']), { v: 'x' });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await db.get('SELECT v FROM kv WHERE k = ?', ['lost']), undefined);
      const result = await db.tx(async (q) => {
        await q.run('INSERT INTO kv (k, v) VALUES (?, ?)', ['kept', 'y']);
        return (await q.all('SELECT k FROM kv')).length;
      });
      assert.equal(result, 1);
      assert.deepEqual(await db.all('SELECT k, v FROM kv'), [{ k: 'kept', v: 'y' }]);
    });
  });

  test(`${b.name}: a database with a newer schema is refused`, async (t) => {
    await withDb(b, t, async (db, url) => {
      await b.setVersion(db, MIGRATIONS.length + 1);
      await assert.rejects(connectDb(url), (e: Error) => {
        assert.match(e.message, new RegExp(`newer claude-vm \\(schema ${MIGRATIONS.length + 1}, this one knows ${MIGRATIONS.length}\\)`));
        return true;
      });
    });
  });
}

test('postgres: processes connecting to a fresh database together all succeed, and migrate it once', async (t) => {
  const url = await backends[1]!.fresh(t);
  if (!url) return;
  const settled = await Promise.allSettled([1, 2, 3, 4].map(() => connectPostgres(url)));
  const dbs = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    assert.deepEqual(await dbs[0]!.all('SELECT version FROM schema_version'), [{ version: MIGRATIONS.length }]);
    for (const db of dbs) assert.deepEqual(await db.get('SELECT COUNT(*) AS count FROM projects'), { count: 0 });
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
  }
});
