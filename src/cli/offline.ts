/** @module Commands that run without a control plane (the server itself, login, image builds). */
import type { Command } from 'commander';

const offline = new WeakSet<Command>();

/** Marks a command so that running it does not connect to (or start) a control plane. */
export function runsOffline<T extends Command>(c: T): T {
  offline.add(c);
  return c;
}

export function isOffline(c: Command): boolean {
  return offline.has(c);
}
