/** @module The agents this daemon can drive. */
import type { AgentName } from '../../protocol/events.js';
import type { AgentDefinition } from './driver.js';
import { claudeAgent } from './claude.js';
import { codexAgent } from './codex.js';
import { geminiAgent } from './gemini.js';
import { qwenAgent } from './qwen.js';
import { opencodeAgent } from './opencode.js';

export const AGENT_DEFINITIONS: Partial<Record<AgentName, AgentDefinition>> = {
  claude: claudeAgent,
  codex: codexAgent,
  gemini: geminiAgent,
  qwen: qwenAgent,
  opencode: opencodeAgent,
};
