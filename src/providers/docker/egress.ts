/**
 * @module Network egress for Docker workspaces: a sidecar container per workspace owns the network namespace, and
 * the workspace joins it (`NetworkMode: container:<sidecar>`). The sidecar holds CAP_NET_ADMIN and the workspace
 * does not, so the agent cannot change the rules; if the sidecar stops, Docker takes the interface away and the
 * workspace is cut off rather than let out. What runs inside is ./egress-sidecar.ts.
 */
import { readFileSync } from 'node:fs';
import { UserError, errorMessage } from '../../protocol/errors.js';
import { DEFAULT_IMAGE } from '../../core/defaults.js';
import { normalizeAllowList, parseEgressMode, splitAllowList } from '../egress-policy.js';
import type { ResourceRefs, WorkspaceSpec } from '../provider.js';
import { READY_FILE, parseUpstream, type SidecarConfig } from './egress-sidecar.js';
import { demux, statusOf, type Engine } from './engine.js';
import { pullImage } from './pull.js';
import { PassThrough } from 'node:stream';

/** The forwarder's uid: no user of the image has it, and only its sockets may reach the upstream resolver. */
const DNS_UID = 64053;

/** `allowlist`: filtered by a sidecar; `open`: not filtered (asked for, or host networking); `off`: no network at all. */
export type EffectiveEgress = 'allowlist' | 'open' | 'off';

export interface EgressPlan {
  mode: EffectiveEgress;
  allow: string[];
  /** Why the workspace is not filtered although a filter was asked for. */
  notice?: string;
  upstream?: string;
}

/** Decides how a new workspace's traffic is handled; bad options fail here, before anything exists. */
export async function planEgress(engine: Engine, spec: WorkspaceSpec, options: Record<string, string>): Promise<EgressPlan> {
  const wanted = parseEgressMode(options.egress, 'The docker option egress') ?? spec.egress?.mode ?? 'allowlist';
  const upstream = options['egress-dns'] || undefined;
  if (upstream) {
    try {
      parseUpstream(upstream);
    } catch {
      throw new UserError('invalid_argument', `The docker option egress-dns must be an IP address with an optional port, not "${upstream}".`);
    }
  }
  const cpUrl = options['control-plane-url'];
  const allow = normalizeAllowList([
    ...(spec.egress?.allow ?? []),
    ...(options['allow-domains'] ?? '').split(','),
    // A daemon that dials a URL (rather than a mounted socket) must reach it.
    ...(cpUrl ? [cpUrl] : []),
  ]);
  const network = options.network;
  if (network === 'none') return { mode: 'off', allow: [] };
  // Docker started with --bridge=none puts containers of the default network on no network at all.
  if (!network && (await engine.call('GET', '/networks/bridge').then(() => false, (e) => (statusOf(e) === 404 ? true : Promise.reject(e))))) {
    return { mode: 'off', allow: [] };
  }
  if (wanted === 'open') return { mode: 'open', allow: [] };
  if (network === 'host') {
    return { mode: 'open', allow: [], notice: 'Network egress is not filtered: the provider uses host networking, which a filter cannot confine (set a bridge network to filter).' };
  }
  return { mode: 'allowlist', allow, upstream };
}

/** The sidecar runs the claude-vm image (it has node and nftables); a foreign workspace image would not do. */
export async function sidecarImage(engine: Engine, workspaceImage: string, native: boolean, options: Record<string, string>): Promise<string> {
  const image = native ? workspaceImage : options['egress-image'] || DEFAULT_IMAGE;
  try {
    await engine.call('GET', `/images/${encodeURIComponent(image)}/json`);
  } catch (e) {
    if (statusOf(e) !== 404) throw e;
    await pullImage(engine, image);
  }
  return image;
}

export async function createSidecar(engine: Engine, spec: WorkspaceSpec, plan: EgressPlan, image: string, network: string | undefined): Promise<string> {
  const split = splitAllowList(plan.allow);
  const config: SidecarConfig = { names: split.names, v4: split.v4, v6: split.v6, upstream: plan.upstream, dnsUid: DNS_UID };
  const source = readFileSync(new URL('./egress-sidecar.js', import.meta.url), 'utf8');
  const created = await engine.call<{ Id: string }>('POST', `/containers/create?name=claude-vm-${spec.id}-egress`, {
    Image: image,
    Hostname: spec.id,
    Labels: { ...spec.labels, 'dev.claude-vm.role': 'egress' },
    User: '0:0',
    Entrypoint: ['node', '--input-type=module', '-e', source],
    Cmd: [],
    WorkingDir: '/',
    Env: ['CLAUDE_VM_EGRESS_ROLE=enforcer', `CLAUDE_VM_EGRESS=${JSON.stringify(config)}`],
    HostConfig: {
      Init: true,
      // NET_ADMIN for the rules, SETUID/SETGID to start the forwarder under its own uid; nothing else.
      CapDrop: ['ALL'],
      CapAdd: ['NET_ADMIN', 'SETUID', 'SETGID'],
      SecurityOpt: ['no-new-privileges'],
      // A fresh marker on every start, so a stale one never reads as ready.
      Tmpfs: { '/run/egress': 'mode=0755' },
      Memory: 256 * 1024 * 1024,
      PidsLimit: 64,
      RestartPolicy: { Name: 'unless-stopped' },
      ...(network ? { NetworkMode: network } : {}),
    },
  });
  return created.Id;
}

/** Starts the sidecar and waits until its rules and resolver are in place; the workspace must not start before. */
export async function startSidecar(engine: Engine, id: string): Promise<void> {
  try {
    await engine.call('POST', `/containers/${id}/start`);
  } catch (e) {
    if (statusOf(e) === 404) throw new UserError('wrong_state', "The workspace's egress filter container no longer exists.", 'Run `claude-vm workspace delete <id>` and `claude-vm workspace up <id>` to recreate it (the data is kept).');
    if (statusOf(e) !== 304) throw new UserError('provider_unavailable', `Docker could not start the egress filter: ${errorMessage(e)}.`, undefined, { cause: e });
  }
  const deadline = Date.now() + 30_000;
  let restarts: number | undefined;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const { State, RestartCount } = await engine.call<{ State: { Running: boolean; Restarting: boolean; ExitCode: number }; RestartCount: number }>('GET', `/containers/${id}/json`);
    restarts ??= RestartCount;
    // Its restart policy would bring a failing filter back again and again: the first failure is the answer.
    if (!State.Running || State.Restarting || RestartCount > restarts) {
      const why = (await lastLogLine(engine, id)) || `exit code ${State.ExitCode}`;
      throw new UserError('provider_unavailable', `The egress filter stopped right after starting: ${why}`, 'The image must have node and nftables (rebuild it with image/build-offline.sh), or set --option egress=open.');
    }
    if ((await execCode(engine, id, ['test', '-f', READY_FILE])) === 0) return;
    if (Date.now() > deadline) throw new UserError('provider_unavailable', 'The egress filter did not become ready within 30 s.', 'See `docker logs claude-vm-<id>-egress`.');
    await new Promise((r) => setTimeout(r, delay));
  }
}

export async function stopSidecar(engine: Engine, id: string, force: boolean): Promise<void> {
  await engine.call('POST', force ? `/containers/${id}/kill` : `/containers/${id}/stop?t=5`).catch((e) => {
    if (![304, 404, 409].includes(statusOf(e) ?? 0)) throw e;
  });
}

export async function sidecarRunning(engine: Engine, id: string): Promise<boolean> {
  try {
    return (await engine.call<{ State: { Running: boolean } }>('GET', `/containers/${id}/json`)).State.Running;
  } catch (e) {
    if (statusOf(e) === 404) return false;
    throw e;
  }
}

/** What the provider records about egress (`workspace show` prints it). */
export function egressRefs(plan: EgressPlan, sidecar: string | undefined): ResourceRefs {
  return { egressMode: plan.mode, ...(sidecar ? { egress: sidecar, egressAllow: plan.allow.join(' ') } : {}) };
}

async function execCode(engine: Engine, id: string, cmd: string[]): Promise<number | null> {
  try {
    const { Id } = await engine.call<{ Id: string }>('POST', `/containers/${id}/exec`, { Cmd: cmd, User: '0:0', AttachStdout: true, AttachStderr: true });
    const conn = await engine.hijack(`/exec/${Id}/start`, { Detach: false, Tty: false });
    conn.resume();
    conn.end();
    await new Promise((r) => conn.once('close', r));
    return (await engine.call<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`)).ExitCode;
  } catch (e) {
    if ([409, 500].includes(statusOf(e) ?? 0)) return null;
    throw e;
  }
}

async function lastLogLine(engine: Engine, id: string): Promise<string> {
  try {
    const res = await engine.stream('GET', `/containers/${id}/logs?stdout=1&stderr=1&tail=5`);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d));
    await demux(res, out, out);
    return text.trim().split('\n').pop()?.replace(/^claude-vm egress: /, '') ?? '';
  } catch {
    return '';
  }
}
