/**
 * @module Puts the workspace daemon into a workspace using nothing but the provider's exec: the same path works
 * for Docker, the local provider and any remote provider. The daemon's code is copied onto the volume (so it
 * survives restarts and works in images that were not built for claude-vm) and kept running by a small
 * supervisor; the image's entrypoint also starts that supervisor at boot. From then on the control plane talks
 * to it only through the tunnel the daemon dials out on.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import type { Provider, ResourceRefs } from '../providers/provider.js';
import { run } from './run-in-workspace.js';

/** dist/: the compiled daemon and the protocol it imports, shipped as src/daemon and src/protocol. */
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHIPPED = ['src/daemon', 'src/protocol'];

const SUPERVISOR = `#!/bin/sh
# Keeps the claude-vm workspace daemon running: one supervisor per workspace (flock), restart after a crash.
D="$(cd "$(dirname "$0")" && pwd)"
export CLAUDE_VM_ROOT="$(dirname "$D")"
# Agents installed by \`claude-vm agent install\` (for images that do not ship them), and the CA they need.
export PATH="$CLAUDE_VM_ROOT/agents/bin:$PATH"
[ -f "$CLAUDE_VM_ROOT/ca.pem" ] && export NODE_EXTRA_CA_CERTS="$CLAUDE_VM_ROOT/ca.pem"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CLAUDE_VM_ROOT/supervisor.lock"
  flock -n 9 || exit 0
fi
while :; do
  node "$D/src/daemon/main.js" serve >>"$CLAUDE_VM_ROOT/daemon.log" 2>&1
  sleep 1
done
`;

export function daemonRoot(workspaceRoot: string): string {
  return `${workspaceRoot}/.claude-vm`;
}

let cachedVersion: string | undefined;
/** A hash of the shipped files: a workspace whose daemon differs gets the new one. */
export function daemonVersion(): string {
  if (cachedVersion) return cachedVersion;
  const h = createHash('sha256').update(SUPERVISOR);
  for (const { base, files } of shippedFiles()) for (const f of files) h.update(f).update(readFileSync(join(base, f)));
  return (cachedVersion = h.digest('hex').slice(0, 16));
}

/** What goes into $R/daemon: paths relative to `base`, which are also the paths there. */
function shippedFiles(): Array<{ base: string; files: string[] }> {
  const walk = (base: string, dir: string, keep: (name: string) => boolean, out: string[] = []): string[] => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(base, p, keep, out);
      else if (keep(name)) out.push(relative(base, p));
    }
    return out;
  };
  return [{ base: DIST, files: SHIPPED.flatMap((d) => walk(DIST, join(DIST, d), (n) => n.endsWith('.js'))) }];
}

export interface DaemonTarget {
  provider: Provider;
  refs: ResourceRefs;
  workspaceId: string;
  projectDir: string;
}

export interface DaemonProbe {
  /** The installed daemon's version ('' when none). */
  version: string;
  /** A tunnel.json is in place (the daemon knows where to dial). */
  configured: boolean;
  /** The installed daemon is this build's: its supervisor was (re)started by the probe, a no-op if running. */
  current: boolean;
}

/**
 * One exec: what is installed, and if it is current, make sure its supervisor runs (the flock makes a second
 * supervisor exit at once). Throws a `wrong_state` UserError when the image cannot run the daemon (no node).
 */
export async function probeDaemon(t: DaemonTarget): Promise<DaemonProbe> {
  const root = daemonRoot(t.provider.workspaceRoot(t.refs));
  const script = [
    'command -v node >/dev/null || exit 127',
    'v=$(cat "$1/daemon/VERSION" 2>/dev/null); echo "version=$v"',
    '[ -f "$1/tunnel.json" ] && echo configured',
    'if [ "$v" = "$2" ]; then setsid sh "$1/daemon/supervise.sh" </dev/null >/dev/null 2>&1 & fi',
  ].join('\n');
  const r = await run(t.provider, t.refs, ['sh', '-c', script, 'sh', root, daemonVersion()]);
  if (r.code === 127) {
    throw new UserError('wrong_state', 'This workspace image has no `node`, which the claude-vm daemon needs.', 'Use the claude-vm image, or an image with Node 20+.');
  }
  const version = /^version=(.*)$/m.exec(r.output)?.[1]?.trim() ?? '';
  return { version, configured: /^configured$/m.test(r.output), current: version === daemonVersion() };
}

/** Installs this build's daemon if the workspace has another (or none), and starts its supervisor. */
export async function installAndStart(t: DaemonTarget, probe: DaemonProbe): Promise<void> {
  const root = daemonRoot(t.provider.workspaceRoot(t.refs));
  if (!probe.current) await install(t, root, daemonVersion());
  await run(t.provider, t.refs, ['sh', '-c', 'setsid sh "$1/daemon/supervise.sh" </dev/null >/dev/null 2>&1 &', 'sh', root]);
}

/** Copies the daemon next to the running one, swaps it in, and has the supervisor restart onto it. */
async function install(t: DaemonTarget, root: string, version: string): Promise<void> {
  // One archive from two places: `-C` before each group (GNU and BSD tar both take it between operands).
  const tar = spawn('tar', ['-cf', '-', ...shippedFiles().flatMap(({ base, files }) => ['-C', base, ...files])], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Consume at once: Node drains (and drops) an unread child stdout when the child exits before exec is ready.
  const archive = tar.stdout.pipe(new PassThrough());
  const script = [
    'set -e',
    'R="$1"; mkdir -p "$R" && chmod 700 "$R"',
    'rm -rf "$R/daemon.new" && mkdir -p "$R/daemon.new"',
    'tar -x --no-same-owner -f - -C "$R/daemon.new"',
    'printf \'{"type":"module"}\\n\' > "$R/daemon.new/package.json"',
    'printf "%s\\n" "$2" > "$R/daemon.new/VERSION"',
    'cat > "$R/daemon.new/supervise.sh" <<\'EOF\'\n' + SUPERVISOR + 'EOF',
    'printf \'{"workspaceId":"%s","projectDir":"%s"}\\n\' "$3" "$4" > "$R/daemon.json"',
    'rm -rf "$R/daemon.old"; [ -d "$R/daemon" ] && mv "$R/daemon" "$R/daemon.old"; mv "$R/daemon.new" "$R/daemon"; rm -rf "$R/daemon.old"',
    // The old daemon keeps its files open; stopping it makes the supervisor start the new code.
    'pkill -f "$R/daemon/src/daemon/main.js serve" 2>/dev/null || true',
  ].join('\n');
  const r = await run(t.provider, t.refs, ['sh', '-c', script, 'sh', root, version, t.workspaceId, t.projectDir], { stdin: archive });
  if (r.code !== 0) throw new UserError("provider_unavailable", `Installing the workspace daemon failed: ${r.output.trim().split("\n")[0]}`);
}
