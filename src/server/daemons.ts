/**
 * @module How the control plane gets a workspace's daemon running and talks to it. The daemon is installed and
 * started through the provider's exec (the one thing every provider has); from then on everything goes through
 * the tunnel it dials out on.
 */
import { PassThrough } from 'node:stream';
import { UserError } from '../protocol/errors.js';
import type { ProgressFn } from '../protocol/types.js';
import type { DaemonChannel } from '../core/conversations.js';
import { daemonRoot, daemonVersion, installAndStart, probeDaemon } from '../core/daemon-link.js';
import { run } from '../core/run-in-workspace.js';
import type { WorkspaceTarget } from '../core/workspaces.js';
import type { ControlPlaneEndpoints } from '../providers/provider.js';
import type { AuthStore } from '../store/auth.js';
import type { TunnelConfig } from '../protocol/tunnel.js';
import type { TunnelHub } from './tunnels.js';

const NO_PEER = Symbol('no peer holds the tunnel');

/** How long a daemon that should already be running gets to (re)connect on its own before we step in. */
const RECONNECT_GRACE_MS = 12_000;
const CONNECT_TIMEOUT_MS = 60_000;

/** Team mode: the tunnel may be held by another process of the same deployment; calls go to it. */
export interface Peers {
  instance: string;
  holder(workspaceId: string): Promise<{ instance: string; url: string } | undefined>;
  forward(url: string, workspaceId: string, method: string, params: Record<string, unknown>): Promise<unknown>;
  forget(workspaceId: string, instance: string): Promise<void>;
}

export class TunnelDaemons implements DaemonChannel {
  /** One set-up per workspace at a time: concurrent requests wait for the same one. */
  private readonly ensuring = new Map<string, Promise<void>>();

  constructor(
    private readonly tunnels: TunnelHub,
    private readonly auth: AuthStore,
    private readonly endpoints: ControlPlaneEndpoints,
    private readonly peers: Peers,
  ) {}

  async ensure(t: WorkspaceTarget, progress: ProgressFn = () => undefined): Promise<void> {
    const current = (v: string) => v === daemonVersion();
    if (this.tunnels.connected(t.workspaceId) && current(this.tunnels.connected(t.workspaceId)!.version)) return;
    if (await this.viaPeer(t.workspaceId, 'ping', {}).then((r) => (r as { version?: string } | undefined)?.version === daemonVersion(), () => false)) return;
    let p = this.ensuring.get(t.workspaceId);
    if (!p) {
      p = this.setUp(t, progress).finally(() => this.ensuring.delete(t.workspaceId));
      this.ensuring.set(t.workspaceId, p);
    }
    return p;
  }

  private async setUp(t: WorkspaceTarget, progress: ProgressFn): Promise<void> {
    const current = (v: string) => v === daemonVersion();
    progress({ step: 'Connecting workspace daemon' });
    const root = daemonRoot(t.provider.workspaceRoot(t.refs));
    const probe = await probeDaemon(t);
    if (probe.current && probe.configured) {
      // Already there and configured: it is (re)connecting by itself, e.g. after a control-plane restart.
      if (await this.tunnels.waitFor(t.workspaceId, RECONNECT_GRACE_MS, current)) return;
    }
    // A fresh token (the old one may be gone) and where to dial; a running daemon notices the new file at once.
    const token = await this.auth.replaceTunnelToken(t.ownerId, t.workspaceId);
    await writeTunnelConfig(t, root, { url: t.provider.tunnelUrl(t.refs, this.endpoints), token });
    await installAndStart(t, probe);
    progress({ step: 'Waiting for the daemon to connect' });
    if (!(await this.tunnels.waitFor(t.workspaceId, CONNECT_TIMEOUT_MS, current))) {
      throw new UserError(
        'provider_unavailable',
        `The workspace daemon did not connect to the control plane at ${t.provider.tunnelUrl(t.refs, this.endpoints)}.`,
        `See ${root}/daemon.log in the workspace (\`claude-vm exec ${t.workspaceId} -- tail ${root}/daemon.log\`); remote workspaces need the server's --public-url.`,
      );
    }
  }

  async call(t: WorkspaceTarget, method: string, params: Record<string, unknown>): Promise<unknown> {
    if (this.tunnels.connected(t.workspaceId)) return this.tunnels.call(t.workspaceId, method, params);
    const viaPeer = await this.viaPeer(t.workspaceId, method, params).catch((e: unknown) => e);
    if (viaPeer !== NO_PEER) {
      if (viaPeer instanceof Error) throw viaPeer;
      return viaPeer;
    }
    await this.ensure(t);
    if (this.tunnels.connected(t.workspaceId)) return this.tunnels.call(t.workspaceId, method, params);
    return this.viaPeer(t.workspaceId, method, params);
  }

  /** The call through the process that holds the tunnel, or NO_PEER when none does (a stale record is dropped). */
  private async viaPeer(workspaceId: string, method: string, params: Record<string, unknown>): Promise<unknown> {
    const holder = await this.peers.holder(workspaceId);
    if (!holder || holder.instance === this.peers.instance) return NO_PEER;
    try {
      return await this.peers.forward(holder.url, workspaceId, method, params);
    } catch (e) {
      if (e instanceof UserError && e.code !== 'provider_unavailable') throw e;
      // That process is gone or no longer holds it: forget the record and connect the daemon here.
      await this.peers.forget(workspaceId, holder.instance);
      return NO_PEER;
    }
  }
}

/** tunnel.json next to the daemon, readable only by the workspace user; the token travels on stdin. */
async function writeTunnelConfig(t: WorkspaceTarget, root: string, config: TunnelConfig): Promise<void> {
  const input = new PassThrough();
  input.end(JSON.stringify(config));
  const script = 'set -e; mkdir -p "$1"; chmod 700 "$1"; umask 077; cat > "$1/tunnel.json.new"; mv "$1/tunnel.json.new" "$1/tunnel.json"';
  const r = await run(t.provider, t.refs, ['sh', '-c', script, 'sh', root], { stdin: input });
  if (r.code !== 0) throw new UserError('provider_unavailable', `Could not configure the workspace daemon: ${r.output.trim().split('\n')[0]}`);
}
