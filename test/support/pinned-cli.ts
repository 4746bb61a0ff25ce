/** @module Installs a pinned agent CLI from npm once per machine, into a cache that later test runs reuse. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Returns the path of `bin` from `pkg@version`; installs to a side directory and renames it, so parallel runs are safe. */
export function pinnedCli(pkg: string, version: string, bin: string): string {
  const cache = join(tmpdir(), `claude-vm-test-${bin}-${version}`);
  const path = join(cache, 'node_modules', '.bin', bin);
  if (existsSync(path)) return path;
  const staging = `${cache}.${process.pid}`;
  mkdirSync(staging, { recursive: true });
  const npm = spawnSync('npm', ['i', '--no-audit', '--no-fund', '--prefix', staging, `${pkg}@${version}`], { encoding: 'utf8' });
  if (npm.status !== 0) throw new Error(`npm i ${pkg}@${version} failed:\n${npm.stderr}`);
  try {
    renameSync(staging, cache);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another run won the race
  }
  return path;
}
