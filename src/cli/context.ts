/** @module What every command gets: a lazily opened client, so `--help` never touches the state store. */
import type { ClaudeVmClient } from '../client/client.js';
import { inProcessClient } from '../client/in-process.js';
import { claudeVmHome } from '../core/defaults.js';

export interface Context {
  client(): ClaudeVmClient;
  close(): void;
}

export function createContext(): Context {
  let client: ClaudeVmClient | undefined;
  return {
    client: () => (client ??= inProcessClient(claudeVmHome())),
    close: () => client?.close(),
  };
}
