/**
 * @module Fly.io provider: a workspace is a Fly Machine with a Fly Volume at /workspace, driven through the Machines
 * API. Every state change takes the machine's lease and waits (looping on 408) until Fly reports the new state.
 * The workspace daemon dials out to the control plane's public URL, so nothing needs to reach into the machine.
 */
import { UserError, errorMessage } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import type { ControlPlaneEndpoints, ExecHandle, ExecOptions, LogOptions, Provider, ProviderFactory, ResourceRefs, RuntimeState, RuntimeStatus, WorkspaceSpec } from '../provider.js';
import { FlyApi, isCapacityError, statusOf, type FlyMachine, type FlyVolume } from './api.js';
import { flyExec } from './exec.js';
import { WORKSPACE_PATH, machineConfig, machineName, volumeName } from './machine-config.js';
import { DEFAULT_FLY_SIZE, FLY_SIZES, VOLUME_PER_GB_MONTH, flyPricePerHour, type FlySize } from './prices.js';

const DEFAULT_API = 'https://api.machines.dev';
/** uid of the workspace user in claude-vm's image (and the one this provider creates in others). */
const WORKSPACE_UID = '1000';
/** How long a start, stop or destroy may take before we give up (Fly itself answers in seconds). */
const STATE_DEADLINE_MS = 5 * 60_000;

/**
 * Runs once per start, as root: Fly mounts a new volume owned by root, and images not built for claude-vm have no
 * workspace user. claude-vm's image links the agents' state into the volume at boot, which could not happen
 * while the volume was root's, so its entrypoint runs again (it is idempotent).
 */
const PREPARE = `
set -e
if ! getent passwd ${WORKSPACE_UID} >/dev/null 2>&1; then
  (groupadd -g ${WORKSPACE_UID} dev && useradd -m -u ${WORKSPACE_UID} -g ${WORKSPACE_UID} -s /bin/sh dev) >/dev/null 2>&1 \\
  || (addgroup -g ${WORKSPACE_UID} dev && adduser -D -u ${WORKSPACE_UID} -G dev dev) >/dev/null 2>&1
fi
u=$(getent passwd ${WORKSPACE_UID} | cut -d: -f1); h=$(getent passwd ${WORKSPACE_UID} | cut -d: -f6)
mkdir -p ${WORKSPACE_PATH} "$h"
[ "$(stat -c %u ${WORKSPACE_PATH})" = ${WORKSPACE_UID} ] || chown ${WORKSPACE_UID}:${WORKSPACE_UID} ${WORKSPACE_PATH}
[ "$(stat -c %u "$h")" = ${WORKSPACE_UID} ] || chown ${WORKSPACE_UID}:${WORKSPACE_UID} "$h"
if [ -x /usr/local/bin/claude-vm-init ]; then runuser -u "$u" -- env HOME="$h" /usr/local/bin/claude-vm-init true; fi
`;

export class FlyProvider implements Provider {
  readonly type = 'fly';
  readonly isolates = true;
  private readonly api: FlyApi;
  private readonly app: string;

  constructor(private readonly options: Record<string, string>) {
    this.api = new FlyApi({ baseUrl: options['api-url'] || DEFAULT_API, token: options.token ?? '' });
    this.app = options.app ?? '';
  }

  workspaceRoot = (): string => WORKSPACE_PATH;

  /** The options every call needs, and the app (created in `org` when it does not exist yet). */
  async check(_spec?: Pick<WorkspaceSpec, 'image'>, progress?: ProgressFn): Promise<void> {
    const missing = ['token', 'app', 'region'].filter((k) => !this.options[k]);
    if (missing.length) {
      throw new UserError('invalid_argument', `The Fly provider needs ${missing.map((k) => `--option ${k}=…`).join(', ')}.`, 'Set them with `claude-vm provider set-options <name> --option k=v`.');
    }
    try {
      await this.api.getApp(this.app);
    } catch (e) {
      if (statusOf(e) === 404 && this.options.org) {
        progress?.({ step: 'Creating Fly app', detail: `${this.app} in ${this.options.org}` });
        await this.api.createApp(this.app, this.options.org).catch((err) => Promise.reject(this.failure('create the app', err)));
        return;
      }
      if (statusOf(e) === 404) throw new UserError('not_found', `Fly app "${this.app}" does not exist.`, 'Create it with `fly apps create`, or set --option org=<org> so claude-vm creates it.');
      throw this.failure('reach the Machines API', e);
    }
  }

  async create(spec: WorkspaceSpec, progress?: ProgressFn): Promise<ResourceRefs> {
    if (!this.options['control-plane-url'] && !spec.controlPlanePublicUrl) {
      throw new UserError(
        'invalid_argument',
        'A Fly workspace dials the control plane, but this control plane has no public URL.',
        'Start the server with `claude-vm server --public-url https://…`, or set `--option control-plane-url=…` on the provider.',
      );
    }
    const sizeName = spec.size ?? DEFAULT_FLY_SIZE;
    const size = FLY_SIZES[sizeName];
    if (!size) throw new UserError('invalid_argument', `Unknown size "${sizeName}".`, `Fly sizes: ${Object.keys(FLY_SIZES).join(', ')}.`);
    const volumeGb = this.volumeSizeGb();
    progress?.({
      step: 'Estimated cost',
      detail: `$${flyPricePerHour(sizeName, this.options).toFixed(4)}/hour while running (${sizeName}: ${size.cpus} ${size.cpuKind} CPU, ${size.memoryMb} MB), plus $${(volumeGb * VOLUME_PER_GB_MONTH).toFixed(2)}/month for the ${volumeGb} GB volume`,
    });

    // A volume that already exists holds this workspace's data (resume after `delete`): reuse it, never remove it.
    const kept = (await this.api.listVolumes(this.app).catch((e) => Promise.reject(this.failure('list volumes', e)))).find(
      (v) => v.name === volumeName(spec.id) && !/destroy/.test(v.state ?? ''),
    );
    const regions = kept ? [kept.region ?? this.options.region!] : this.regions();
    let lastCapacityError: unknown;
    for (const region of regions) {
      let volume: FlyVolume | undefined = kept;
      try {
        if (!volume) {
          progress?.({ step: 'Creating volume', detail: `${volumeName(spec.id)}, ${volumeGb} GB in ${region}` });
          volume = await this.api.createVolume(this.app, { name: volumeName(spec.id), region, size_gb: volumeGb, encrypted: true });
        }
        progress?.({ step: 'Creating machine', detail: `${machineName(spec.id)} in ${region}` });
        const machine = await this.createMachine(spec, size, volume.id, region);
        return { app: this.app, machine: machine.id, volume: volume.id, region, user: WORKSPACE_UID };
      } catch (e) {
        if (volume && !kept) await this.api.deleteVolume(this.app, volume.id).catch(() => undefined);
        if (!isCapacityError(e)) throw e instanceof UserError ? e : this.failure('create the workspace', e);
        lastCapacityError = e;
        progress?.({ step: 'No capacity', detail: `${region}: ${errorMessage(e)}` });
      }
    }
    throw new UserError(
      'provider_unavailable',
      `Fly has no capacity for a ${sizeName} machine in ${regions.join(', ')} (${errorMessage(lastCapacityError)}).`,
      kept ? `The workspace's volume lives in ${regions[0]}; try again later.` : 'Try again later, another size, or add regions with `--option fallback-regions=ams,fra`.',
    );
  }

  /** Creates (and so launches) the machine holding a lease, and waits until it has started. */
  private async createMachine(spec: WorkspaceSpec, size: FlySize, volumeId: string, region: string): Promise<FlyMachine> {
    const config = machineConfig({ spec, size, volumeId, autoStop: this.autoStop(), servicePort: this.options['service-port'] ? Number(this.options['service-port']) : undefined });
    const machine = await this.api.createMachine(this.app, { name: machineName(spec.id), region, config, lease_ttl: 120 });
    try {
      await this.api.wait(this.app, machine.id, 'started', STATE_DEADLINE_MS, machine.instance_id);
    } catch (e) {
      // A machine that never started is no workspace: take it away, with its lease.
      await this.api.destroyMachine(this.app, machine.id, machine.nonce ?? '').catch(() => undefined);
      throw e;
    } finally {
      if (machine.nonce) await this.api.releaseLease(this.app, machine.id, machine.nonce);
    }
    return machine;
  }

  tunnelUrl(_refs: ResourceRefs, cp: ControlPlaneEndpoints): string {
    const url = this.options['control-plane-url'] || cp.publicUrl;
    if (!url) {
      throw new UserError('invalid_argument', 'A Fly workspace dials the control plane, but this control plane has no public URL.', 'Start the server with `--public-url`, or set `--option control-plane-url=…` on the provider.');
    }
    return url;
  }

  async start(refs: ResourceRefs, progress?: ProgressFn): Promise<void> {
    const id = need(refs, 'machine');
    const current = await this.machine(refs);
    if (!current || current.state === 'destroyed') throw gone(refs);
    if (current.state !== 'started') {
      progress?.({ step: 'Starting machine', detail: `${id} (${current.state})` });
      await this.api.withLease(this.app, id, 'start', async (nonce) => {
        await this.api.startMachine(this.app, id, nonce).catch((e) => Promise.reject(isCapacityError(e) ? this.noCapacity(refs, e) : this.failure('start the machine', e)));
        await this.api.wait(this.app, id, 'started', STATE_DEADLINE_MS);
      });
    }
    progress?.({ step: 'Preparing workspace', detail: 'volume owner and workspace user' });
    const r = await this.api.exec(this.app, id, { command: ['sh', '-c', PREPARE], timeout: 120 }).catch((e) => Promise.reject(this.failure('prepare the machine', e)));
    if (r.exit_code !== 0) {
      throw new UserError('provider_unavailable', `Preparing the Fly Machine failed: ${(r.stderr || r.stdout || '').trim().split('\n').pop() || `exit ${r.exit_code}`}.`, 'The image needs sh, getent, stat and chown (any Debian, Ubuntu or Alpine base has them).');
    }
  }

  /** Stops the machine, or suspends it with `--option stop-mode=suspend` (a forced stop always kills it). */
  async stop(refs: ResourceRefs, opts?: { force?: boolean }): Promise<void> {
    const id = need(refs, 'machine');
    const current = await this.machine(refs);
    if (!current || ['stopped', 'suspended', 'destroyed'].includes(current.state)) return;
    const suspend = this.options['stop-mode'] === 'suspend' && !opts?.force;
    await this.api.withLease(this.app, id, suspend ? 'suspend' : 'stop', async (nonce) => {
      if (suspend) {
        await this.api.suspendMachine(this.app, id, nonce);
        await this.api.wait(this.app, id, 'suspended', STATE_DEADLINE_MS);
      } else {
        await this.api.stopMachine(this.app, id, nonce, opts?.force ? 'SIGKILL' : undefined);
        await this.api.wait(this.app, id, 'stopped', STATE_DEADLINE_MS, current.instance_id);
      }
    }).catch((e) => Promise.reject(e instanceof UserError ? e : this.failure('stop the machine', e)));
  }

  async delete(refs: ResourceRefs, opts: { purge: boolean }): Promise<void> {
    const current = refs.machine ? await this.machine(refs) : undefined;
    if (current && current.state !== 'destroyed') {
      try {
        await this.api.withLease(this.app, current.id, 'destroy', async (nonce) => {
          await this.api.destroyMachine(this.app, current.id, nonce);
          await this.api.wait(this.app, current.id, 'destroyed', STATE_DEADLINE_MS);
        });
      } catch (e) {
        // 404: it went meanwhile, which is what was asked.
        if (statusOf(e) !== 404) throw this.failure('destroy the machine', e);
      }
    }
    if (opts.purge && refs.volume) await this.api.deleteVolume(this.app, refs.volume).catch(ignore404).catch((e) => Promise.reject(this.failure('delete the volume', e)));
  }

  async status(refs: ResourceRefs): Promise<RuntimeStatus> {
    if (!refs.machine) return { state: 'missing', detail: 'no Fly Machine was recorded' };
    try {
      const m = await this.machine(refs);
      if (!m) return { state: 'missing', detail: `Fly Machine ${refs.machine} no longer exists` };
      const state = runtimeState(m.state);
      return state === 'running' || state === 'stopped' ? { state } : { state, detail: `Fly Machine ${m.id} is ${m.state}` };
    } catch (e) {
      return { state: 'error', detail: `the Machines API did not answer: ${errorMessage(e)}` };
    }
  }

  async exec(refs: ResourceRefs, opts: ExecOptions): Promise<ExecHandle> {
    const machine = need(refs, 'machine');
    const handle = await flyExec(
      { api: this.api, app: this.app, machine, user: refs.user ?? WORKSPACE_UID, timeoutS: Number(this.options['exec-timeout'] ?? 600) },
      { ...opts, cwd: opts.cwd ?? WORKSPACE_PATH },
    );
    // Errors from the API (the machine stopped, gone) become sentences, like the other providers'.
    const exit = handle.exit.catch(async (e) => {
      if (e instanceof UserError) throw e;
      const m = await this.machine(refs).catch(() => undefined);
      if (!m || m.state === 'destroyed') throw gone(refs);
      if (m.state !== 'started') throw new UserError('wrong_state', 'The workspace is not running.', 'Start it with `claude-vm workspace up <id>`.');
      throw this.failure('run a command on the machine', e);
    });
    return { exit, resize: handle.resize };
  }

  /** The machine's events from the Machines API (launch, start, stop, exit…), oldest first; `follow` polls. */
  async logs(refs: ResourceRefs, opts: LogOptions): Promise<void> {
    const id = need(refs, 'machine');
    const seen = new Set<string>();
    for (let first = true; ; first = false) {
      // Fly lists the newest first; ties in the timestamp keep that order reversed.
      const events = (await this.api.events(this.app, id, 50)).slice().reverse().sort((a, b) => (a.timestamp ?? 0) - (b.timestamp ?? 0));
      const fresh = events.filter((e) => !seen.has(e.id ?? `${e.timestamp}${e.type}`));
      for (const e of fresh) seen.add(e.id ?? `${e.timestamp}${e.type}`);
      const lines = (first && opts.tail !== undefined ? fresh.slice(-opts.tail) : fresh)
        .map((e) => `${new Date(e.timestamp ?? 0).toISOString()} ${e.type ?? 'event'} ${e.status ?? ''}${e.source ? ` (${e.source})` : ''}\n`)
        .join('');
      // One write, awaited: the caller may close the stream as soon as this returns.
      if (lines) await new Promise<void>((resolve, reject) => opts.stdout.write(lines, (e) => (e ? reject(e) : resolve())));
      if (!opts.follow) return;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  /** The machine, or undefined when Fly no longer knows it. */
  private async machine(refs: ResourceRefs): Promise<FlyMachine | undefined> {
    try {
      return await this.api.getMachine(this.app, need(refs, 'machine'));
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw this.failure('read the machine', e);
    }
  }

  private regions(): string[] {
    const extra = (this.options['fallback-regions'] ?? '').split(',').map((r) => r.trim()).filter(Boolean);
    return [...new Set([this.options.region!, ...extra])];
  }

  private volumeSizeGb(): number {
    const n = Number(this.options['volume-size'] ?? 10);
    if (!Number.isInteger(n) || n < 1) throw new UserError('invalid_argument', `volume-size must be a whole number of GB, not "${this.options['volume-size']}".`);
    return n;
  }

  private autoStop(): 'off' | 'stop' | 'suspend' {
    const v = this.options['auto-stop'] ?? 'off';
    if (v !== 'off' && v !== 'stop' && v !== 'suspend') throw new UserError('invalid_argument', `auto-stop must be off, stop or suspend, not "${v}".`);
    return v;
  }

  private noCapacity(refs: ResourceRefs, e: unknown): UserError {
    return new UserError('provider_unavailable', `Fly has no capacity to start the machine in ${refs.region} right now (${errorMessage(e)}).`, "The workspace's volume lives there; try again in a few minutes.", { cause: e });
  }

  /** One sentence for an API failure, never with the token (the API never echoes it; the URL holds none). */
  private failure(what: string, e: unknown): UserError {
    if (e instanceof UserError) return e;
    const status = statusOf(e);
    if (status === 401 || status === 403) {
      return new UserError('unauthorized', `Fly refused the token while trying to ${what} (${errorMessage(e)}).`, 'Create one with `fly tokens create org` and set it with `claude-vm provider set-options <name> --option token=…`.', { cause: e });
    }
    return new UserError('provider_unavailable', `Could not ${what} on Fly: ${errorMessage(e)}${status ? ` (HTTP ${status})` : ''}.`, undefined, { cause: e });
  }
}

/** Fly's machine states, as claude-vm sees them; passing states count as where they are going. */
export function runtimeState(flyState: string): RuntimeState {
  switch (flyState) {
    case 'started':
    case 'starting':
    case 'replacing':
    case 'updating':
      return 'running';
    case 'created':
    case 'stopped':
    case 'stopping':
    case 'suspended':
    case 'suspending':
      return 'stopped';
    case 'destroyed':
    case 'destroying':
      return 'missing';
    default:
      return 'error';
  }
}

function need(refs: ResourceRefs, key: string): string {
  const v = refs[key];
  if (!v) throw new UserError('wrong_state', `This workspace has no Fly ${key} recorded.`, 'Run `claude-vm workspace up <id>` to recreate it.');
  return v;
}

function gone(refs: ResourceRefs): UserError {
  return new UserError('wrong_state', `The workspace's Fly Machine ${refs.machine} no longer exists.`, 'Run `claude-vm workspace up <id>` to recreate it around its volume.');
}

function ignore404(e: unknown): void {
  if (statusOf(e) !== 404) throw e;
}

export const flyProviderFactory: ProviderFactory = {
  type: 'fly',
  description: 'Fly.io Machines with a Fly Volume at /workspace (the image comes from your registry)',
  isolates: true,
  options: [
    { name: 'token', description: 'Fly API token (`fly tokens create org`); stored encrypted', required: true },
    { name: 'app', description: 'Fly app the workspaces run in', required: true },
    { name: 'org', description: 'Fly organization; when set, the app is created there if it does not exist' },
    { name: 'region', description: 'region for new workspaces (e.g. iad, ams)', required: true },
    { name: 'fallback-regions', description: 'regions to try, in order, when the first has no capacity (e.g. ord,ewr)', default: 'none' },
    { name: 'volume-size', description: 'size of the /workspace volume, in GB', default: '10' },
    { name: 'stop-mode', description: '`workspace down` stops the machine, or suspends it (resumes faster): stop|suspend', default: 'stop' },
    { name: 'auto-stop', description: "Fly's proxy stops idle machines (off|stop|suspend); it only sees traffic to service-port", default: 'off' },
    { name: 'service-port', description: 'a port in the workspace that Fly serves on https://<app>.fly.dev (and starts the machine for)', default: 'none' },
    { name: 'control-plane-url', description: 'URL workspaces dial to reach the control plane', default: "the server's --public-url" },
    { name: 'exec-timeout', description: 'longest a command run through the Machines API may take, in seconds', default: '600' },
    { name: 'price-per-hour', description: 'what an hour costs you, if not Fly list price (regions differ)', default: 'from Fly\'s price table' },
    { name: 'api-url', description: 'Machines API base URL', default: DEFAULT_API },
  ],
  sizes: FLY_SIZES,
  defaultSize: DEFAULT_FLY_SIZE,
  pricePerHour: flyPricePerHour,
  create: (options) => new FlyProvider(options),
};
