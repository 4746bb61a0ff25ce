/**
 * @module An opencode plugin (loaded by opencode itself, from its private config) that puts the approval gate in
 * front of its `bash` tool: `tool.execute.before` asks the driver's GateSocket (path in $CLAUDE_VM_GATE_SOCKET)
 * and throws the reason when refused, which fails the tool call and shows the model why. It fails closed.
 * No imports but node:net: opencode runs it in its own (Bun) runtime, with nothing of claude-vm installed there.
 */
import { connect } from 'node:net';

interface ToolInput { tool: string }
interface ToolOutput { args?: { command?: unknown } }

function ask(socketPath: string, command: string): Promise<{ allow?: unknown; reason?: unknown }> {
  return new Promise((resolve, reject) => {
    const conn = connect(socketPath);
    let text = '';
    conn.on('data', (d) => (text += String(d)));
    conn.on('end', () => {
      try { resolve(JSON.parse(text) as { allow?: unknown; reason?: unknown }); } catch { reject(new Error('the approval gate gave no answer')); }
    });
    conn.on('error', (e) => reject(new Error(`the approval gate is unreachable (${e.message})`)));
    conn.write(JSON.stringify({ tool: 'Bash', input: { command } }) + '\n');
  });
}

export default async function claudeVmGate(): Promise<Record<string, unknown>> {
  return {
    'tool.execute.before': async (input: ToolInput, output: ToolOutput) => {
      if (input.tool !== 'bash') return;
      const command = output.args?.command;
      const socketPath = process.env.CLAUDE_VM_GATE_SOCKET;
      if (!socketPath) throw new Error('the approval gate is not configured');
      if (typeof command !== 'string') throw new Error('the approval gate could not read the command');
      const verdict = await ask(socketPath, command);
      if (verdict.allow !== true) throw new Error(typeof verdict.reason === 'string' ? verdict.reason : 'refused by the approval gate');
    },
  };
}
