/** @module Docker provider: a container plus a named volume at /workspace, through the Docker Engine API. */
import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { UserError } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import type { ExecHandle, ExecOptions, LogOptions, Provider, ProviderFactory, ResourceRefs, RuntimeStatus, WorkspaceSpec } from '../provider.js';
import { BOOTSTRAP_SCRIPT, IS_READY, WORKSPACE_UID } from './bootstrap.js';
import { connectEngine, dockerMessage, pingEngine, statusOf } from './engine.js';
import { pullImage } from './pull.js';

/** Images built from image/Dockerfile carry this label: they bring their own non-root user and entrypoint. */
export const NATIVE_IMAGE_LABEL = 'dev.claude-vm.image';
const ROOT = '/workspace';

export class DockerProvider implements Provider {
  readonly type = 'docker';
  readonly isolates = true;
  private readonly docker: Docker;
  private readonly where: string;

  constructor(private readonly options: Record<string, string>) {
    ({ docker: this.docker, where: this.where } = connectEngine(options.host));
  }

  workspaceRoot = (): string => ROOT;

  async check(spec?: Pick<WorkspaceSpec, 'image'>, progress?: ProgressFn): Promise<void> {
    await pingEngine(this.docker, this.where);
    if (!spec) return;
    try {
      await this.docker.getImage(spec.image).inspect();
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      await pullImage(this.docker, spec.image, progress);
    }
  }

  async create(spec: WorkspaceSpec, progress?: ProgressFn): Promise<ResourceRefs> {
    const volume = `claude-vm-${spec.id}`;
    const image = await this.docker.getImage(spec.image).inspect();
    const native = image.Config?.Labels?.[NATIVE_IMAGE_LABEL] === '1';
    // A volume that already exists holds this workspace's data (resume after `delete`): reuse it, never remove it.
    const existed = await this.docker.getVolume(volume).inspect().then(() => true, (e) => (statusOf(e) === 404 ? false : Promise.reject(e)));
    if (!existed) {
      progress?.({ step: 'Creating volume', detail: volume });
      await this.docker.createVolume({ Name: volume, Labels: spec.labels });
    }
    try {
      progress?.({ step: 'Creating container', detail: `claude-vm-${spec.id}` });
      const container = await this.docker.createContainer({
        name: `claude-vm-${spec.id}`,
        Image: spec.image,
        Hostname: spec.id,
        Labels: spec.labels,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: ROOT,
        // Foreign images get a tiny root bootstrap that adds the workspace user; ours start unprivileged.
        ...(native ? {} : { User: '0:0', Entrypoint: ['/bin/sh', '-c', BOOTSTRAP_SCRIPT], Cmd: [] }),
        HostConfig: {
          Init: true,
          Mounts: [{ Type: 'volume', Source: volume, Target: ROOT }],
          // Running workspaces come back after a dockerd or host restart; `down` keeps them down.
          RestartPolicy: { Name: 'unless-stopped' },
          SecurityOpt: ['no-new-privileges'],
        },
      });
      return { container: container.id, volume, user: native ? (image.Config?.User || 'dev') : `${WORKSPACE_UID}:${WORKSPACE_UID}` };
    } catch (e) {
      if (!existed) await this.docker.getVolume(volume).remove().catch(() => undefined);
      throw new UserError('provider_unavailable', `Docker could not create the container: ${dockerMessage(e)}.`, undefined, { cause: e });
    }
  }

  async start(refs: ResourceRefs, progress?: ProgressFn): Promise<void> {
    const c = this.docker.getContainer(need(refs, 'container'));
    progress?.({ step: 'Starting container' });
    try {
      await c.start();
    } catch (e) {
      if (statusOf(e) === 404) throw gone(refs);
      if (statusOf(e) !== 304) throw new UserError('provider_unavailable', `Docker could not start the container: ${dockerMessage(e)}.`, undefined, { cause: e });
    }
    await this.waitReady(c);
  }

  /** Waits for the entrypoint's ready marker, so the first exec never races its set-up (user, ownership, links). */
  private async waitReady(c: Docker.Container): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      const info = await c.inspect();
      if (!info.State.Running) {
        throw new UserError('provider_unavailable', `The container exited right after starting (code ${info.State.ExitCode}).`, 'See `claude-vm workspace logs <id>`.');
      }
      if ((await this.probeReady(c)) === 0) return;
      if (Date.now() > deadline) {
        throw new UserError('provider_unavailable', 'The workspace did not become ready within 60 s.', 'See `claude-vm workspace logs <id>`; a custom image needs /bin/sh.');
      }
      await sleep(delay);
    }
  }

  /** Exit code of the ready check, or null when the engine cannot exec yet (it may still be tearing down the last run). */
  private async probeReady(c: Docker.Container): Promise<number | null> {
    try {
      const probe = await c.exec({ Cmd: ['sh', '-c', IS_READY], User: '0:0', AttachStdout: false, AttachStderr: false });
      await probe.start({ Detach: true } as Docker.ExecStartOptions);
      for (let i = 0; i < 50; i++) {
        const r = await probe.inspect();
        if (!r.Running && r.ExitCode !== null) return r.ExitCode;
        await sleep(5);
      }
      return null;
    } catch (e) {
      if ([409, 500].includes(statusOf(e) ?? 0)) return null;
      throw e;
    }
  }

  async stop(refs: ResourceRefs, opts?: { force?: boolean }): Promise<void> {
    const c = this.docker.getContainer(need(refs, 'container'));
    try {
      if (opts?.force) await c.kill();
      else await c.stop({ t: 10 });
    } catch (e) {
      // 304: already stopped; 409 on kill: not running. 404 means there is nothing left to stop.
      if (![304, 404, 409].includes(statusOf(e) ?? 0)) throw e;
    }
  }

  async delete(refs: ResourceRefs, opts: { purge: boolean }): Promise<void> {
    if (refs.container) {
      await this.docker.getContainer(refs.container).remove({ force: true, v: false }).catch(ignore404);
    }
    if (opts.purge && refs.volume) {
      await this.docker.getVolume(refs.volume).remove().catch(ignore404);
    }
  }

  async status(refs: ResourceRefs): Promise<RuntimeStatus> {
    if (!refs.container) return { state: 'missing', detail: 'no container was recorded' };
    try {
      const s = (await this.docker.getContainer(refs.container).inspect()).State;
      if (s.Running) return { state: 'running' };
      if (s.OOMKilled) return { state: 'error', detail: 'the container ran out of memory and was stopped' };
      if (s.Status === 'dead') return { state: 'error', detail: `the container is dead: ${s.Error || 'unknown reason'}` };
      return { state: 'stopped' };
    } catch (e) {
      if (statusOf(e) === 404) return { state: 'missing', detail: 'the container no longer exists' };
      return { state: 'error', detail: `Docker engine did not answer: ${dockerMessage(e)}` };
    }
  }

  async exec(refs: ResourceRefs, opts: ExecOptions): Promise<ExecHandle> {
    const c = this.docker.getContainer(need(refs, 'container'));
    let exec: Docker.Exec;
    try {
      exec = await c.exec({
        Cmd: opts.argv,
        WorkingDir: opts.cwd ?? ROOT,
        Env: Object.entries({ HOME: '/home/dev', ...opts.env }).map(([k, v]) => `${k}=${v}`),
        User: opts.asRoot ? '0:0' : refs.user ?? 'dev',
        AttachStdin: !!opts.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: !!opts.tty,
        ...(opts.tty ? { ConsoleSize: [opts.tty.rows, opts.tty.cols] } : {}),
      } as Docker.ExecCreateOptions);
    } catch (e) {
      if (statusOf(e) === 409) throw new UserError('wrong_state', 'The workspace is not running.', 'Start it with `claude-vm workspace up <id>`.');
      if (statusOf(e) === 404) throw gone(refs);
      throw e;
    }
    const stream = await exec.start({ hijack: true, stdin: !!opts.stdin, Tty: !!opts.tty } as Docker.ExecStartOptions);
    if (opts.tty) stream.pipe(opts.stdout, { end: false });
    else this.docker.modem.demuxStream(stream, opts.stdout, opts.stderr ?? opts.stdout);
    if (opts.stdin) {
      // Half-close on EOF so the remote command sees end of input (e.g. `tar -x` finishing).
      opts.stdin.pipe(stream);
    }
    const exit = new Promise<number>((resolve, reject) => {
      const done = () => exec.inspect().then((i) => resolve(i.ExitCode ?? 1), reject);
      stream.on('end', done);
      stream.on('error', reject);
    });
    return {
      exit,
      resize: (rows, cols) => void exec.resize({ h: rows, w: cols }).catch(() => undefined),
    };
  }

  async logs(refs: ResourceRefs, opts: LogOptions): Promise<void> {
    const c = this.docker.getContainer(need(refs, 'container'));
    const common = { stdout: true, stderr: true, timestamps: false, ...(opts.tail !== undefined ? { tail: opts.tail } : {}) };
    if (opts.follow) {
      const stream = await c.logs({ ...common, follow: true });
      const out = new PassThrough();
      this.docker.modem.demuxStream(stream, out, out);
      out.pipe(opts.stdout, { end: false });
      await new Promise<void>((resolve) => stream.on('end', resolve));
    } else {
      const buf = await c.logs({ ...common, follow: false });
      opts.stdout.write(demuxBuffer(buf));
    }
  }
}

/** Non-following logs come back as one buffer of multiplexed frames (8-byte header each). */
function demuxBuffer(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(parts);
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
  options: [{ name: 'host', description: 'Docker engine address (unix:///var/run/docker.sock, tcp://host:2375)', default: '$DOCKER_HOST or the local socket' }],
  create: (options) => new DockerProvider(options),
};

