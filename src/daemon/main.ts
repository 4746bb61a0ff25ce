/**
 * @module Entry point inside the workspace.
 *   node main.js serve   run the daemon (the supervisor restarts it if it dies)
 *   node main.js call    one request: params as a JSON line on stdin, answers as JSON lines on stdout. This is how
 *                        clients reach the daemon through a provider's exec until the control-plane tunnel exists.
 *                        It exits when stdin closes, so a followed stream ends with its client.
 *   node main.js tui <id> run the agent's own TUI on a conversation's session, holding it while it runs
 */
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function config(): { root: string; projectDir: string; workspaceId: string; version: string } {
  const root = process.env.CLAUDE_VM_ROOT ?? '/workspace/.claude-vm';
  const file = JSON.parse(readFileSync(join(root, 'daemon.json'), 'utf8')) as { projectDir: string; workspaceId: string };
  let version = 'dev';
  try {
    version = readFileSync(join(here, '..', '..', 'VERSION'), 'utf8').trim();
  } catch {
    // Running from a source checkout.
  }
  return { root, ...file, version };
}

async function serve(): Promise<void> {
  // Loaded only here: `call` runs once per client request and should start as fast as Node can.
  const { Daemon } = await import('./daemon.js');
  const c = config();
  const daemon = new Daemon({ ...c, secretDir: process.env.CLAUDE_VM_SECRET_DIR ?? join('/tmp', `claude-vm-${process.getuid?.() ?? 0}`, c.workspaceId) });
  await daemon.start();
  process.stderr.write(`claude-vm-daemon ${c.version} serving ${daemon.socketPath} (pid ${process.pid})\n`);
  const shutdown = () => void daemon.stop().finally(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

function call(method: string): void {
  const root = process.env.CLAUDE_VM_ROOT ?? '/workspace/.claude-vm';
  let input = '';
  let sent = false;
  const socket = connect(join(root, 'daemon.sock'));
  socket.on('error', (e) => {
    process.stdout.write(JSON.stringify({ id: 1, error: { message: `The workspace daemon is not running (${e.message}).`, code: 'daemon_unavailable' } }) + '\n');
    process.exit(3);
  });
  socket.on('end', () => process.exit(0));
  let follow = false;
  const send = (params: string) => {
    if (sent) return;
    sent = true;
    const parsed = JSON.parse(params.trim() || '{}') as Record<string, unknown>;
    follow = parsed.follow === true;
    socket.write(JSON.stringify({ id: 1, method, params: parsed }) + '\n');
  };
  process.stdin.on('data', (d) => {
    input += d.toString();
    if (input.includes('\n')) send(input.slice(0, input.indexOf('\n')));
  });
  process.stdin.on('end', () => {
    send(input);
    // A follower's client has gone away: stop following.
    if (follow) process.exit(0);
  });
  let partial = '';
  socket.on('data', (d) => {
    process.stdout.write(d);
    if (follow) return;
    // A one-shot call is over once its `result` or `error` line is complete (stdout to a pipe is synchronous).
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      const msg = JSON.parse(l) as Record<string, unknown>;
      if ('result' in msg || 'error' in msg) process.exit(0);
    }
  });
}

/**
 * Runs the agent's own TUI on a conversation's session (inside tmux, started by `claude-vm chat --tui`). The
 * daemon connection stays open while the TUI runs: that is the lock that keeps headless turns out.
 */
function tui(conversation: string): void {
  const root = process.env.CLAUDE_VM_ROOT ?? '/workspace/.claude-vm';
  const socket = connect(join(root, 'daemon.sock'));
  socket.on('error', (e) => {
    process.stderr.write(`claude-vm: the workspace daemon is not running (${e.message}).\n`);
    process.exit(3);
  });
  socket.write(JSON.stringify({ id: 1, method: 'conversation.tui', params: { id: conversation } }) + '\n');
  let buf = '';
  socket.on('data', (d) => {
    buf += d.toString();
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    const reply = JSON.parse(buf.slice(0, nl)) as { result?: { sessionId: string | null; env: Record<string, string>; cwd: string }; error?: { message: string } };
    socket.removeAllListeners('data');
    if (!reply.result) {
      process.stderr.write(`claude-vm: ${reply.error?.message ?? 'the daemon refused'}\n`);
      process.exit(1);
    }
    const { sessionId, env, cwd } = reply.result;
    markOnboarded(cwd);
    const args = ['--dangerously-skip-permissions', ...(sessionId ? ['--resume', sessionId] : [])];
    const child = spawn('claude', args, { cwd, env: { ...process.env, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1', ...env }, stdio: 'inherit' });
    child.on('exit', (code) => process.exit(code ?? 0));
    child.on('error', (e) => {
      process.stderr.write(`claude-vm: could not start claude: ${e.message}\n`);
      process.exit(1);
    });
  });
}

/**
 * The TUI's first-run screens (a connectivity check against api.anthropic.com, the folder trust prompt) would
 * stop a workspace behind a gateway or proxy; the user configured the agent through claude-vm, so skip them.
 */
function markOnboarded(cwd: string): void {
  const file = join(process.env.HOME ?? '/home/dev', '.claude.json');
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // Missing or unreadable: start from an empty config.
  }
  const projects = (config.projects ?? {}) as Record<string, Record<string, unknown>>;
  projects[cwd] = { ...projects[cwd], hasTrustDialogAccepted: true };
  writeFileSync(file, JSON.stringify({ ...config, hasCompletedOnboarding: true, projects }, null, 2));
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === 'serve') void serve().catch((e: Error) => {
  process.stderr.write(`claude-vm-daemon: ${e.message}\n`);
  process.exit(1);
});
else if (cmd === 'call' && arg) call(arg);
else if (cmd === 'tui' && arg) tui(arg);
else {
  process.stderr.write('usage: main.js serve | main.js call <method>  (params as JSON on stdin)\n');
  process.exit(2);
}
