/** @module Serves the client surface from this process, with the state store under $CLAUDE_VM_HOME. */
import { ProviderService } from '../core/providers.js';
import { WorkspaceService } from '../core/workspaces.js';
import { AgentService } from '../core/agents.js';
import { ConversationService } from '../core/conversations.js';
import { installAgent } from '../core/agent-install.js';
import { PROVIDER_TYPES } from '../providers/registry.js';
import { StateStore } from '../store/state.js';
import type { ClaudeVmClient } from './client.js';
import { createHash } from 'node:crypto';

/** A stable, non-revealing tag for this state store (its path hashed). */
export function ownerLabel(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 12);
}

export function inProcessClient(home: string): ClaudeVmClient {
  // Opened on first use, so help texts and provider type listings never touch the state store.
  let services: { store: StateStore; providers: ProviderService; workspaces: WorkspaceService; agents: AgentService; conversations: ConversationService } | undefined;
  const s = () => {
    if (!services) {
      const store = StateStore.open(home);
      const providers = new ProviderService(store, home);
      const workspaces = new WorkspaceService(store, providers, ownerLabel(home));
      const agents = new AgentService(store);
      services = { store, providers, workspaces, agents, conversations: new ConversationService(store, workspaces, agents) };
    }
    return services;
  };
  return {
    providers: {
      types: () => Object.values(PROVIDER_TYPES).map(({ type, description, isolates, options }) => ({ type, description, isolates, options })),
      list: () => s().providers.list(),
      add: (req) => s().providers.add(req),
      setOptions: (name, options) => s().providers.setOptions(name, options),
      delete: (name) => s().providers.delete(name),
    },
    workspaces: {
      up: (req, progress) => s().workspaces.up(req, progress),
      list: (filter) => s().workspaces.list(filter),
      get: (ref) => s().workspaces.get(ref),
      down: (ref, opts) => s().workspaces.down(ref, opts),
      delete: (ref, opts) => s().workspaces.delete(ref, opts),
      exec: (ref, req) => s().workspaces.exec(ref, req),
      shell: (ref, req) => s().workspaces.shell(ref, req),
      logs: (ref, opts) => s().workspaces.logs(ref, opts),
    },
    agents: {
      set: (req) => s().agents.set(req),
      list: () => s().agents.list(),
      install: (req, progress) => installAgent(s().workspaces, req, progress ?? (() => undefined)),
    },
    conversations: {
      create: (req) => s().conversations.create(req),
      list: (ws) => s().conversations.list(ws),
      get: (ref) => s().conversations.get(ref),
      send: (ref, text) => s().conversations.send(ref, text),
      cancel: (ref, q) => s().conversations.cancel(ref, q),
      interrupt: (ref) => s().conversations.interrupt(ref),
      events: (ref, opts) => s().conversations.events(ref, opts),
      tui: (ref, io) => s().conversations.tui(ref, io),
    },
    close: () => services?.store.close(),
  };
}
