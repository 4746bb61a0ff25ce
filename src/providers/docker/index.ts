/** @module Docker provider: a container plus a named volume at /workspace, through the Docker Engine API. */
import { PassThrough } from 'node:stream';
import { UserError } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import type { ControlPlaneEndpoints, ExecHandle, ExecOptions, LogOptions, Provider, ProviderFactory, ResourceRefs, RuntimeStatus, SizeSpec, WorkspaceSpec } from '../provider.js';
import { BOOTSTRAP_SCRIPT, IS_READY, WORKSPACE_UID } from './bootstrap.js';
import { Engine, connectEngine, demux, pingEngine, statusOf } from './engine.js';
import { PIDS_LIMITS, hardenedHostConfig, readOnlyRootOption } from './hardening.js';
import { createSidecar, egressRefs, planEgress, sidecarImage, sidecarRunning, startSidecar, stopSidecar } from './egress.js';
import { pullImage } from './pull.js';

/** Images built from image/Dockerfile carry this label: they bring their own non-root user and entrypoint. */
export const NATIVE_IMAGE_LABEL = 'dev.claude-vm.image';
const ROOT = '/workspace';
/** Where the control plane's socket directory is mounted in workspaces on a local engine. */
const CP_MOUNT = '/run/claude-vm';

export const DOCKER_SIZES: Record<string, SizeSpec> = {
  small: { cpus: 1, memoryMb: 2048 },
  medium: { cpus: 2, memoryMb: 4096 },
  large: { cpus: 4, memoryMb: 8192 },
};

interface ImageInspect {
  Config?: { User?: string; Labels?: Record<string, string> | null };
}
interface ContainerState {
  Running: boolean;
  Status: string;
  OOMKilled: boolean;
  ExitCode: number;
  Error?: string;
}
interface ExecInspect {
  Running: boolean;
  ExitCode: number | null;
}

/**
 * How a DockerProvider reaches its engine. The plain provider talks to a socket or TCP address directly; the ssh
 * provider talks to a remote engine through a tunnel that must be up first, and mounts the tunnel's end of the
 * control plane socket instead of this machine's.
 */
export interface EngineConnection {
  engine: Engine;
  /** True when the engine runs on this machine, so its host network is this machine's. */
  onThisMachine: boolean;
  /**
   * Brings up what calls to the engine travel through (an SSH tunnel); at once when it is up. Absent for an engine
   * reached directly. Throws a UserError naming the fix.
   */
  ready?(progress?: ProgressFn): Promise<void>;
  /** Checks that the engine answers (`check` only, not every call); throws a UserError naming the fix. */
  ping(): Promise<void>;
  /** The directory on the engine's host where the control plane's socket appears, to mount into workspaces. */
  controlPlaneDir?(spec: WorkspaceSpec): string | undefined;
  /** Brings an image the engine lacks (pull, or copy from another engine). */
  provideImage?(image: string, progress?: ProgressFn): Promise<void>;
}

/** The engine on this machine (or DOCKER_HOST / `host`): its containers can mount the control plane's socket directory. */
export function directConnection(host?: string): EngineConnection {
  const engine = connectEngine(host);
  return {
    engine,
    onThisMachine: engine.local,
    ping: () => pingEngine(engine),
    controlPlaneDir: (spec) => (engine.local ? spec.controlPlaneSocketDir : undefined),
  };
}

export class DockerProvider implements Provider {
  readonly type: string = 'docker';
  readonly isolates = true;
  private readonly engine: Engine;

  constructor(
    private readonly options: Record<string, string>,
    private readonly conn: EngineConnection = directConnection(options.host),
  ) {
    this.engine = conn.engine;
  }

  workspaceRoot = (): string => ROOT;

  /** The engine's transport, if it has one to bring up; nothing to wait for on a direct connection. */
  private async ready(progress?: ProgressFn): Promise<void> {
    await this.conn.ready?.(progress);
  }

  async check(spec?: Pick<WorkspaceSpec, 'image'>, progress?: ProgressFn): Promise<void> {
    await this.ready(progress);
    await this.conn.ping();
    if (!spec) return;
    try {
      await this.engine.call('GET', `/images/${encodeURIComponent(spec.image)}/json`);
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      await (this.conn.provideImage ?? ((image, p) => pullImage(this.engine, image, p)))(spec.image, progress);
    }
  }

  async create(spec: WorkspaceSpec, progress?: ProgressFn): Promise<ResourceRefs> {
    await this.ready(progress);
    const volume = `claude-vm-${spec.id}`;
    const image = await this.engine.call<ImageInspect>('GET', `/images/${encodeURIComponent(spec.image)}/json`);
    const native = image.Config?.Labels?.[NATIVE_IMAGE_LABEL] === '1';
    // Checked before anything is made, so a bad size or option leaves nothing behind.
    const confinement = await this.confinement(spec.size, native);
    // A volume that already exists holds this workspace's data (resume after `delete`): reuse it, never remove it.
    const existed = await this.engine.call('GET', `/volumes/${volume}`).then(() => true, (e) => (statusOf(e) === 404 ? false : Promise.reject(e)));
    if (!existed) {
      progress?.({ step: 'Creating volume', detail: volume });
      await this.engine.call('POST', '/volumes/create', { Name: volume, Labels: spec.labels });
    }
    // The daemon dials the control plane through its socket, mounted in: no port is opened on either side.
    const controlPlaneDir = this.options['control-plane-url'] ? undefined : this.conn.controlPlaneDir?.(spec);
    let sidecar: string | undefined;
    try {
      // The workspace joins the egress sidecar's network namespace: the sidecar owns the rules, the workspace cannot touch them.
      const egress = await planEgress(this.engine, spec, this.options);
      if (egress.notice) progress?.({ step: 'Note', detail: egress.notice });
      if (egress.mode === 'allowlist') {
        progress?.({ step: 'Creating egress filter', detail: `${egress.allow.length} allowed names and addresses` });
        sidecar = await createSidecar(this.engine, spec, egress, await sidecarImage(this.engine, spec.image, native, this.options), this.options.network);
      }
      progress?.({ step: 'Creating container', detail: volume });
      const created = await this.engine.call<{ Id: string }>('POST', `/containers/create?name=${volume}`, {
        Image: spec.image,
        ...(sidecar ? {} : { Hostname: spec.id }),
        Labels: spec.labels,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: ROOT,
        // Foreign images get a tiny root bootstrap that adds the workspace user; ours start unprivileged.
        ...(native ? {} : { User: '0:0', Entrypoint: ['/bin/sh', '-c', BOOTSTRAP_SCRIPT], Cmd: [] }),
        HostConfig: {
          Init: true,
          Mounts: [
            { Type: 'volume', Source: volume, Target: ROOT },
            ...(controlPlaneDir ? [{ Type: 'bind', Source: controlPlaneDir, Target: CP_MOUNT }] : []),
          ],
          ...confinement,
          // Running workspaces come back after a dockerd or host restart; `down` keeps them down.
          RestartPolicy: { Name: 'unless-stopped' },
          ...(sidecar ? { NetworkMode: `container:${sidecar}` } : this.options.network ? { NetworkMode: this.options.network } : {}),
        },
      });
      return {
        container: created.Id, volume, user: native ? image.Config?.User || 'dev' : `${WORKSPACE_UID}:${WORKSPACE_UID}`,
        ...(controlPlaneDir ? { controlPlaneSocket: `${CP_MOUNT}/server.sock` } : {}),
        ...egressRefs(egress, sidecar),
      };
    } catch (e) {
      if (sidecar) await this.engine.call('DELETE', `/containers/${sidecar}?force=true`).catch(() => undefined);
      if (!existed) await this.engine.call('DELETE', `/volumes/${volume}`).catch(() => undefined);
      if (e instanceof UserError) throw e;
      throw new UserError('provider_unavailable', `Docker could not create the container: ${(e as Error).message}.`, undefined, { cause: e });
    }
  }

  /** Limits for a size (never more CPUs or memory than the engine has: Docker refuses that), and the hardening. */
  private async confinement(size: string | undefined, native: boolean): Promise<Record<string, unknown>> {
    const spec = DOCKER_SIZES[size ?? 'medium'];
    if (!spec) throw new UserError('invalid_argument', `Unknown size "${size}".`, `Docker sizes: ${Object.keys(DOCKER_SIZES).join(', ')}.`);
    const info = await this.engine.call<{ NCPU?: number; MemTotal?: number }>('GET', '/info');
    return hardenedHostConfig({
      size: spec,
      pids: PIDS_LIMITS[size ?? 'medium'] ?? PIDS_LIMITS.medium!,
      engine: { cpus: info.NCPU, memoryBytes: info.MemTotal },
      native,
      readOnlyRoot: readOnlyRootOption(this.options['read-only-root']),
    });
  }

  tunnelUrl(refs: ResourceRefs, cp: ControlPlaneEndpoints): string {
    if (this.options['control-plane-url']) return this.options['control-plane-url'];
    if (refs.controlPlaneSocket) return `unix:${refs.controlPlaneSocket}`;
    if (this.options.network === 'host' && this.conn.onThisMachine) return cp.url;
    return cp.publicUrl ?? cp.url;
  }

  async start(refs: ResourceRefs, progress?: ProgressFn): Promise<void> {
    await this.ready();
    const id = need(refs, 'container');
    if (refs.egress) {
      progress?.({ step: 'Starting egress filter' });
      await startSidecar(this.engine, refs.egress);
    }
    progress?.({ step: 'Starting container' });
    try {
      await this.engine.call('POST', `/containers/${id}/start`);
    } catch (e) {
      if (statusOf(e) === 404) throw gone(refs);
      if (statusOf(e) !== 304) throw new UserError('provider_unavailable', `Docker could not start the container: ${(e as Error).message}.`, undefined, { cause: e });
    }
    await this.waitReady(id);
  }

  /** Waits for the entrypoint's ready marker, so the first exec never races its set-up (user, ownership, links). */
  private async waitReady(id: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      const { State } = await this.engine.call<{ State: ContainerState }>('GET', `/containers/${id}/json`);
      if (!State.Running) {
        throw new UserError('provider_unavailable', `The container exited right after starting (code ${State.ExitCode}).`, 'See `claude-vm workspace logs <id>`.');
      }
      if ((await this.probeReady(id)) === 0) return;
      if (Date.now() > deadline) {
        throw new UserError('provider_unavailable', 'The workspace did not become ready within 60 s.', 'See `claude-vm workspace logs <id>`; a custom image needs /bin/sh.');
      }
      await sleep(delay);
    }
  }

  /**
   * Exit code of the ready check, or null when the engine cannot exec yet (it may still be tearing down the last
   * run). The check waits inside the container (up to ~2 s), so readiness is seen within 10 ms of the marker.
   */
  private async probeReady(id: string): Promise<number | null> {
    try {
      const wait = `i=0; until ${IS_READY}; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.01; done`;
      const { Id } = await this.engine.call<{ Id: string }>('POST', `/containers/${id}/exec`, { Cmd: ['sh', '-c', wait], User: '0:0', AttachStdout: true, AttachStderr: true });
      const conn = await this.engine.hijack(`/exec/${Id}/start`, { Detach: false, Tty: false });
      conn.resume();
      conn.end();
      await new Promise((r) => conn.once('close', r));
      return (await this.engine.call<ExecInspect>('GET', `/exec/${Id}/json`)).ExitCode;
    } catch (e) {
      if ([409, 500].includes(statusOf(e) ?? 0)) return null;
      throw e;
    }
  }

  async stop(refs: ResourceRefs, opts?: { force?: boolean }): Promise<void> {
    await this.ready();
    const id = need(refs, 'container');
    try {
      await this.engine.call('POST', opts?.force ? `/containers/${id}/kill` : `/containers/${id}/stop?t=10`);
    } catch (e) {
      // 304: already stopped; 409 on kill: not running. 404 means there is nothing left to stop.
      if (![304, 404, 409].includes(statusOf(e) ?? 0)) throw e;
    }
    if (refs.egress) await stopSidecar(this.engine, refs.egress, !!opts?.force);
  }

  async delete(refs: ResourceRefs, opts: { purge: boolean }): Promise<void> {
    await this.ready();
    if (refs.container) await this.engine.call('DELETE', `/containers/${refs.container}?force=true`).catch(ignore404);
    if (refs.egress) await this.engine.call('DELETE', `/containers/${refs.egress}?force=true`).catch(ignore404);
    if (opts.purge && refs.volume) await this.engine.call('DELETE', `/volumes/${refs.volume}`).catch(ignore404);
  }

  async status(refs: ResourceRefs): Promise<RuntimeStatus> {
    if (!refs.container) return { state: 'missing', detail: 'no container was recorded' };
    try {
      await this.ready();
      const s = (await this.engine.call<{ State: ContainerState }>('GET', `/containers/${refs.container}/json`)).State;
      if (s.Running && refs.egress && !(await sidecarRunning(this.engine, refs.egress))) {
        return { state: 'error', detail: 'the egress filter stopped, so the workspace has no network; `workspace down` and `up` restart it' };
      }
      if (s.Running) return { state: 'running' };
      if (s.OOMKilled) return { state: 'error', detail: 'the container ran out of memory and was stopped' };
      if (s.Status === 'dead') return { state: 'error', detail: `the container is dead: ${s.Error || 'unknown reason'}` };
      return { state: 'stopped' };
    } catch (e) {
      if (statusOf(e) === 404) return { state: 'missing', detail: 'the container no longer exists' };
      return { state: 'error', detail: `Docker engine did not answer: ${(e as Error).message}` };
    }
  }

  async exec(refs: ResourceRefs, opts: ExecOptions): Promise<ExecHandle> {
    await this.ready();
    const id = need(refs, 'container');
    let execId: string;
    try {
      ({ Id: execId } = await this.engine.call<{ Id: string }>('POST', `/containers/${id}/exec`, {
        Cmd: opts.argv,
        WorkingDir: opts.cwd ?? ROOT,
        Env: Object.entries({ HOME: '/home/dev', ...opts.env }).map(([k, v]) => `${k}=${v}`),
        User: opts.asRoot ? '0:0' : refs.user ?? 'dev',
        AttachStdin: !!opts.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: !!opts.tty,
      }));
    } catch (e) {
      if (statusOf(e) === 409) throw new UserError('wrong_state', 'The workspace is not running.', 'Start it with `claude-vm workspace up <id>`.');
      if (statusOf(e) === 404) throw gone(refs);
      throw e;
    }
    const conn = await this.engine.hijack(`/exec/${execId}/start`, { Detach: false, Tty: !!opts.tty });
    const finished = opts.tty
      ? new Promise<void>((resolve, reject) => {
          conn.pipe(opts.stdout, { end: false });
          conn.on('end', resolve).on('close', resolve).on('error', reject);
        })
      : demux(conn, opts.stdout, opts.stderr ?? opts.stdout);
    // Half-close on EOF so the remote command sees end of input (e.g. `tar -x` finishing).
    if (opts.stdin) opts.stdin.pipe(conn);
    else conn.end();
    const exit = finished.then(async () => {
      conn.destroy();
      return (await this.engine.call<ExecInspect>('GET', `/exec/${execId}/json`)).ExitCode ?? 1;
    });
    const resize = (rows: number, cols: number) => void this.engine.call('POST', `/exec/${execId}/resize?h=${rows}&w=${cols}`).catch(() => undefined);
    // API 1.41 has no ConsoleSize on exec create, so size the terminal as soon as it exists.
    if (opts.tty) resize(opts.tty.rows, opts.tty.cols);
    return { exit, resize };
  }

  async logs(refs: ResourceRefs, opts: LogOptions): Promise<void> {
    await this.ready();
    const id = need(refs, 'container');
    const query = `stdout=1&stderr=1&follow=${opts.follow ? 1 : 0}${opts.tail !== undefined ? `&tail=${opts.tail}` : ''}`;
    const res = await this.engine.stream('GET', `/containers/${id}/logs?${query}`);
    const out = new PassThrough();
    out.pipe(opts.stdout, { end: false });
    await demux(res, out, out);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function need(refs: ResourceRefs, key: string): string {
  const v = refs[key];
  if (!v) throw new UserError('wrong_state', `This workspace has no ${key} recorded.`, 'Run `claude-vm workspace up <id>` to recreate it.');
  return v;
}

function gone(refs: ResourceRefs): UserError {
  return new UserError('wrong_state', `The workspace container ${refs.container?.slice(0, 12)} no longer exists.`, 'Run `claude-vm workspace up <id>` to recreate it from its volume.');
}

function ignore404(e: unknown): void {
  if (statusOf(e) !== 404) throw e;
}

export const dockerProviderFactory: ProviderFactory = {
  type: 'docker',
  description: 'Containers on a Docker engine (local socket, DOCKER_HOST, or --option host=…)',
  isolates: true,
  options: [
    { name: 'host', description: 'Docker engine address (unix:///var/run/docker.sock, tcp://host:2375)', default: '$DOCKER_HOST or the local socket' },
    { name: 'network', description: 'Docker network for workspaces (e.g. host, or a network you created)', default: 'bridge' },
    { name: 'control-plane-url', description: 'URL workspaces dial to reach the control plane', default: 'its socket, mounted in (local engines), else --public-url' },
    { name: 'read-only-root', description: 'true: a read-only root filesystem (tmpfs for /tmp, /run and the home directory); images built for claude-vm only', default: 'false' },
    { name: 'egress', description: 'allowlist: workspaces reach only allowed names and addresses (see docs/security.md); open: anything', default: 'allowlist (open with network=host)' },
    { name: 'allow-domains', description: 'comma-separated names (*.example.com for subdomains), IPs or CIDRs every workspace here may reach', default: 'model APIs, package registries, the project\'s git host' },
    { name: 'egress-dns', description: 'resolver the egress filter asks for allowed names (ip or ip:port)', default: "the engine's own" },
    { name: 'egress-image', description: 'image for the egress filter when the workspace image is not a claude-vm one', default: 'claude-vm/workspace:latest' },
    { name: 'price-per-hour', description: 'what an hour of a medium workspace costs you (small ×0.5, large ×2), for cost accounting', default: '0' },
  ],
  sizes: DOCKER_SIZES,
  defaultSize: 'medium',
  pricePerHour: (size, options) => scaledPrice(size, options),
  create: (options) => new DockerProvider(options),
};

/** Your own engine costs nothing unless you say what an hour is worth (a rented VPS, say). */
export function scaledPrice(size: string, options: Record<string, string>): number {
  const base = Number(options['price-per-hour'] ?? 0) || 0;
  return base * ({ small: 0.5, medium: 1, large: 2 }[size] ?? 1);
}
