/**
 * @module `agent install`: puts an agent CLI into a running workspace whose image does not have it, under
 * /workspace/.claude-vm/agents on the volume (so it survives restarts), using the workspace's own npm.
 */
import { PassThrough } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import type { ProgressFn } from '../protocol/types.js';
import { AGENT_PACKAGES } from './agent-packages.js';
import { parseAgent } from './agents.js';
import { daemonRoot } from './daemon-link.js';
import type { DaemonChannel } from './conversations.js';
import { run } from './run-in-workspace.js';
import type { WorkspaceService } from './workspaces.js';

export interface InstallAgentRequest {
  workspace: string;
  agent: string;
  /** PEM certificates the workspace must trust to reach the npm registry (a corporate TLS proxy). */
  caPem?: string;
}

export async function installAgent(
  workspaces: WorkspaceService,
  daemons: DaemonChannel,
  req: InstallAgentRequest,
  progress: ProgressFn,
): Promise<{ agent: string; version: string }> {
  const agent = parseAgent(req.agent);
  const p = AGENT_PACKAGES[agent];
  const t = await workspaces.runningTarget(req.workspace);
  const root = daemonRoot(t.provider.workspaceRoot(t.refs));
  const ca = req.caPem;
  if (ca) {
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UserError('invalid_argument', 'The CA bundle holds no PEM certificate.', 'Pass --ca-bundle with a PEM file, or --ca-bundle "" for none.');
    progress({ step: 'Adding CA bundle', detail: `${root}/ca.pem` });
    const input = new PassThrough();
    input.end(ca);
    const r = await run(t.provider, t.refs, ['sh', '-c', 'mkdir -p "$1" && cat > "$1/ca.pem"', 'sh', root], { stdin: input });
    if (r.code !== 0) throw new UserError('provider_unavailable', `Could not write the CA bundle: ${r.output.trim()}`);
  }
  progress({ step: 'Installing', detail: `${p.pkg}@${p.version}` });
  const script = [
    'command -v npm >/dev/null || { echo "npm is not installed in this image" >&2; exit 127; }',
    '[ -f "$1/ca.pem" ] && export NODE_EXTRA_CA_CERTS="$1/ca.pem" npm_config_cafile="$1/ca.pem"',
    'npm install -g --no-fund --no-audit --loglevel=error --prefix "$1/agents" "$2" && "$1/agents/bin/$3" --version',
  ].join('\n');
  const r = await run(t.provider, t.refs, ['sh', '-c', script, 'sh', root, `${p.pkg}@${p.version}`, p.bin], {
    onLine: (l) => progress({ step: 'Installing', detail: l.slice(0, 120) }),
  });
  if (r.code === 127) throw new UserError('wrong_state', 'This workspace image has no npm to install agents with.', 'Use the claude-vm image, or an image with Node 20+ and npm.');
  if (r.code !== 0) {
    const why = r.output.trim().split('\n').find((l) => /ERR|error/i.test(l)) ?? r.output.trim().split('\n').pop();
    throw new UserError('provider_unavailable', `Installing ${p.pkg}@${p.version} failed: ${why}`, 'Check that the workspace reaches the npm registry; behind a TLS proxy pass --ca-bundle.');
  }
  // The daemon's PATH has the agents folder, so new conversations find the CLI; make sure the daemon is there.
  await daemons.ensure(t, progress);
  return { agent, version: p.version };
}
