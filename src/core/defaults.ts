/** @module Defaults shared by the core and the providers. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_IMAGE = 'claude-vm/workspace:latest';

export function claudeVmHome(): string {
  return process.env.CLAUDE_VM_HOME || join(homedir(), '.claude-vm');
}
