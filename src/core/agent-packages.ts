/**
 * @module The npm package and pinned version of each agent CLI. image/Dockerfile pins the same versions as ARGs
 * (test/agent-packages.test.ts keeps the two in step), so `agent install` puts the tested CLI into other images.
 */
import type { AgentName } from '../protocol/events.js';

export interface AgentPackage {
  pkg: string;
  version: string;
  bin: string;
  /** The Dockerfile ARG that pins the same version. */
  dockerArg: string;
}

export const AGENT_PACKAGES: Record<AgentName, AgentPackage> = {
  claude: { pkg: '@anthropic-ai/claude-code', version: '2.1.330', bin: 'claude', dockerArg: 'CLAUDE_CODE_VERSION' },
  codex: { pkg: '@openai/codex', version: '0.169.0', bin: 'codex', dockerArg: 'CODEX_VERSION' },
  gemini: { pkg: '@google/gemini-cli', version: '0.61.0', bin: 'gemini', dockerArg: 'GEMINI_CLI_VERSION' },
  qwen: { pkg: '@qwen-code/qwen-code', version: '0.24.4', bin: 'qwen', dockerArg: 'QWEN_CODE_VERSION' },
  opencode: { pkg: 'opencode-ai', version: '1.18.33', bin: 'opencode', dockerArg: 'OPENCODE_VERSION' },
};
