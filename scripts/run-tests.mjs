#!/usr/bin/env node
// The whole test suite: make sure the shared workspace image exists (built once per run, cached by its inputs),
// start a throwaway PostgreSQL when one is installed, then run every test file (or those given) in parallel.
//   node scripts/run-tests.mjs [dist/test/x.test.js …]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBinDir, startTestPostgres } from './test-postgres.mjs';

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!process.env.CLAUDE_VM_TEST_IMAGE) {
  run(process.execPath, ['bin/claude-vm.js', 'image', 'build', '--offline']);
}
const dir = join('dist', 'test');
const given = process.argv.slice(2);
const files = given.length ? given : readdirSync(dir).filter((f) => f.endsWith('.test.js')).map((f) => join(dir, f));
// One server for the whole run; without PostgreSQL installed, the tests that need it fail and say why.
const pg = !process.env.CLAUDE_VM_TEST_PG && process.env.CLAUDE_VM_SKIP_PG !== '1' && postgresBinDir() ? await startTestPostgres() : undefined;
if (pg) process.env.CLAUDE_VM_TEST_PG = pg.url;
// Most time is spent waiting on dockerd and containers, not CPU, so run more files than cores.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=4', '--test-reporter=spec', ...files], { stdio: 'inherit' });
await pg?.stop();
process.exit(r.status ?? 1);
