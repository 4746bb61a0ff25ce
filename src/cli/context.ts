/** @module What every command gets: a client connected on first use, so `--help` never starts a server. */
import type { ClaudeVmClient } from '../client/client.js';
import { httpClient } from '../client/http.js';
import { resolveConnection } from '../client/connect.js';
import { claudeVmHome } from '../core/defaults.js';

export interface Context {
  home: string;
  client(): ClaudeVmClient;
  /** Connects (starting the local server if needed); commands call it before using client(). */
  connect(): Promise<ClaudeVmClient>;
  close(): void;
}

export function createContext(): Context {
  let client: ClaudeVmClient | undefined;
  const home = claudeVmHome();
  return {
    home,
    client: () => {
      if (!client) throw new Error('not connected: a command used the client before connecting');
      return client;
    },
    connect: async () => (client ??= httpClient(await resolveConnection(home))),
    close: () => client?.close(),
  };
}
