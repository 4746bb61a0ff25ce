/**
 * @module A PreToolUse hook command (Claude Code's hook contract, which codex follows): reads the hook input
 * (`{tool_name, tool_input, …}`) on stdin, asks the driver's GateSocket (its path is argv[2]) and exits 0 to let
 * the call run, or 2 with the reason on stderr to refuse it (the agent shows the model that reason). It fails
 * closed: no answer from the gate refuses the call.
 *
 *   node gate-hook.js <socket path>
 */
import { connect } from 'node:net';

function refuse(reason: string): never {
  process.stderr.write(reason + '\n');
  process.exit(2);
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

async function main(): Promise<void> {
  const socketPath = process.argv[2];
  if (!socketPath) refuse('the approval gate is not configured');
  let hook: { tool_name?: unknown; tool_input?: unknown };
  try { hook = JSON.parse(await readStdin()) as typeof hook; } catch { refuse('the approval gate could not read the tool call'); }
  const answer = await new Promise<string>((resolve, reject) => {
    const conn = connect(socketPath);
    let text = '';
    conn.on('data', (d) => (text += String(d)));
    conn.on('end', () => resolve(text));
    conn.on('error', reject);
    conn.write(JSON.stringify({ tool: hook.tool_name, input: hook.tool_input }) + '\n');
  }).catch((e: Error) => refuse(`the approval gate is unreachable (${e.message})`));
  let verdict: { allow?: unknown; reason?: unknown };
  try { verdict = JSON.parse(answer) as typeof verdict; } catch { refuse('the approval gate gave no answer'); }
  if (verdict.allow === true) process.exit(0);
  refuse(typeof verdict.reason === 'string' ? verdict.reason : 'refused by the approval gate');
}

void main();
