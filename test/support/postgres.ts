/** @module Real PostgreSQL for tests: the server scripts/run-tests.mjs started, and one fresh database per use. */
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import pg from 'pg';

/**
 * The server URL from CLAUDE_VM_TEST_PG (scripts/run-tests.mjs sets it when PostgreSQL is installed). Without it the
 * caller's test fails with a clear message, unless CLAUDE_VM_SKIP_PG=1: then it is undefined and the test should skip.
 */
export async function testPostgresUrl(): Promise<string | undefined> {
  const url = process.env.CLAUDE_VM_TEST_PG;
  if (url) return url;
  if (process.env.CLAUDE_VM_SKIP_PG === '1') return undefined;
  throw new Error(
    'This test needs PostgreSQL, and CLAUDE_VM_TEST_PG is not set. Install it (scripts/setup.sh) and run the tests ' +
      'with scripts/run-tests.mjs (it starts a throwaway server), or set CLAUDE_VM_TEST_PG=postgres://…, ' +
      'or set CLAUDE_VM_SKIP_PG=1 to skip the PostgreSQL tests.',
  );
}

async function onServer<T>(serverUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const created: { serverUrl: string; name: string }[] = [];
// Matters for a long-lived CLAUDE_VM_TEST_PG server; the runner's own server is deleted whole anyway.
after(async () => {
  for (const { serverUrl, name } of created) {
    await onServer(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined);
  }
});

/** Creates an empty, uniquely named database on the server (dropped when the test file ends) and returns its URL. */
export async function freshDatabase(serverUrl: string): Promise<string> {
  const name = `cvm_test_${randomBytes(6).toString('hex')}`;
  await onServer(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  created.push({ serverUrl, name });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
