/**
 * @module The default egress allowlist of a workspace: what an agent working unattended needs to reach (its model
 * API, the package registries, the project's git host), plus what the user adds with --allow-domain.
 */
import { spawnSync } from 'node:child_process';
import { AGENTS, type AgentName } from '../protocol/events.js';
import { normalizeAllowList, type EgressSpec } from '../providers/egress-policy.js';
import type { StateStore } from '../store/state.js';
import type { Source } from './sources.js';

/** Each agent's default model endpoint; a base URL set with `agent set --base-url` is added to these. */
export const MODEL_API_HOSTS: Record<AgentName, string[]> = {
  claude: ['api.anthropic.com'],
  codex: ['api.openai.com'],
  gemini: ['generativelanguage.googleapis.com'],
  qwen: ['dashscope.aliyuncs.com', 'dashscope-intl.aliyuncs.com'],
  opencode: ['models.dev'],
};

/** The public registries of the common package managers (npm/yarn/pnpm, pip, cargo, go, gem). */
export const REGISTRY_HOSTS = [
  'registry.npmjs.org', 'registry.yarnpkg.com',
  'pypi.org', 'files.pythonhosted.org',
  'crates.io', 'index.crates.io', 'static.crates.io',
  'proxy.golang.org', 'sum.golang.org',
  'rubygems.org', 'index.rubygems.org',
];

/** The allowlist for one workspace, from the owner's agent settings, the project source and the user's additions. */
export async function workspaceEgress(store: StateStore, userId: string, workspaceId: string, source: Pick<Source, 'source' | 'sourceKind'>, extra: string[]): Promise<EgressSpec> {
  const baseUrls = (await store.listAgentConfigs(userId))
    .filter((c) => c.workspaceId === '' || c.workspaceId === workspaceId)
    .flatMap((c) => (c.baseUrl ? [c.baseUrl] : []));
  const git = gitHostOf(source);
  return {
    mode: 'allowlist',
    allow: normalizeAllowList([...AGENTS.flatMap((a) => MODEL_API_HOSTS[a]), ...baseUrls, ...REGISTRY_HOSTS, ...(git ? [git] : []), ...extra]),
  };
}

/** The host of the project's repository: the URL it was cloned from, or a local checkout's `origin`. */
export function gitHostOf(source: Pick<Source, 'source' | 'sourceKind'>): string | null {
  if (source.sourceKind === 'git') return hostOfGitUrl(source.source);
  if (source.sourceKind !== 'path') return null;
  const r = spawnSync('git', ['-C', source.source, 'remote', 'get-url', 'origin'], { encoding: 'utf8' });
  return r.status === 0 ? hostOfGitUrl(r.stdout.trim()) : null;
}

function hostOfGitUrl(url: string): string | null {
  const scp = /^[\w.-]+@([\w.-]+):/.exec(url);
  if (scp) return scp[1]!;
  try {
    const u = new URL(url);
    return u.protocol === 'file:' ? null : u.hostname || null;
  } catch {
    return null;
  }
}
