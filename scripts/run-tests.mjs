#!/usr/bin/env node
// The whole test suite: make sure the shared workspace image exists (built once per run, cached by its inputs),
// then run every test file in parallel against the real Docker engine.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!process.env.CLAUDE_VM_TEST_IMAGE) {
  run(process.execPath, ['bin/claude-vm.js', 'image', 'build', '--offline']);
}
const dir = join('dist', 'test');
const files = readdirSync(dir).filter((f) => f.endsWith('.test.js')).map((f) => join(dir, f));
// Most time is spent waiting on dockerd and containers, not CPU, so run more files than cores.
run(process.execPath, ['--test', '--test-concurrency=4', '--test-reporter=spec', ...files]);
