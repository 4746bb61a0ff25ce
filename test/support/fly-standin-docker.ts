/**
 * @module What backs the Fly stand-in's Machines: a real container on the local dockerd per Machine (its image,
 * command, env and files), a Docker volume per Fly Volume, `docker exec` for exec and `docker pause` for suspend.
 * Everything is named and labelled with the stand-in's run id, so cleaning up touches nothing else on the engine.
 */
import http from 'node:http';
import { PassThrough } from 'node:stream';
import { demux } from '../../src/providers/docker/engine.js';
import { LabelledDocker, unless } from './labelled-docker.js';
import { ustarHeader } from '../../src/snapshots/export.js';

export interface BackingMachine {
  name: string;
  image: string;
  cmd?: string[];
  entrypoint?: string[];
  env: Record<string, string>;
  files: Array<{ path: string; mode: number; content: Buffer }>;
  mounts: Array<{ dockerVolume: string; path: string }>;
  cpus: number;
  memoryMb: number;
}

export class DockerBacking extends LabelledDocker {
  constructor(
    /** Label value and name prefix of everything this stand-in creates. */
    readonly runId: string,
    private readonly network: string,
  ) {
    super('dev.claude-vm.flystandin', runId);
  }

  /** Creates the container (not started) and writes the Machine's files into it, as Fly does before boot. */
  async createContainer(m: BackingMachine): Promise<string> {
    const { Id } = await this.engine.call<{ Id: string }>('POST', `/containers/create?name=${m.name}`, {
      Image: m.image,
      ...(m.cmd ? { Cmd: m.cmd } : {}),
      ...(m.entrypoint ? { Entrypoint: m.entrypoint } : {}),
      Env: Object.entries(m.env).map(([k, v]) => `${k}=${v}`),
      Labels: this.labels,
      HostConfig: {
        // Fly's own init is PID 1 in a Machine; Docker's is the nearest thing.
        Init: true,
        // NoCopy: a new Fly volume is an empty file system owned by root, not a copy of the image's directory.
        Mounts: m.mounts.map((v) => ({ Type: 'volume', Source: v.dockerVolume, Target: v.path, VolumeOptions: { NoCopy: true } })),
        Memory: m.memoryMb * 1024 * 1024,
        NanoCpus: await this.nanoCpus(m.cpus),
        NetworkMode: this.network,
      },
    });
    if (m.files.length) await this.putArchive(Id, tar(m.files));
    return Id;
  }

  async stop(id: string, kill: boolean): Promise<void> {
    await this.engine.call('POST', kill ? `/containers/${id}/kill` : `/containers/${id}/stop?t=10`).catch(unless(304, 409));
  }

  async pause(id: string): Promise<void> {
    await this.engine.call('POST', `/containers/${id}/pause`);
  }

  async unpause(id: string): Promise<void> {
    await this.engine.call('POST', `/containers/${id}/unpause`);
  }

  async paused(id: string): Promise<boolean> {
    return (await this.engine.call<{ State: { Paused: boolean } }>('GET', `/containers/${id}/json`)).State.Paused;
  }

  /** `docker exec` as root (Fly runs exec as root), with the whole input and output in memory, as Fly's exec has them. */
  async exec(id: string, command: string[], stdin: string | undefined): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> {
    const session = await this.openExec(id, { cmd: command, user: '0:0', stdin: stdin !== undefined, tty: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sink = (into: Buffer[]) => new PassThrough().on('data', (d: Buffer) => into.push(d));
    const done = demux(session.conn, sink(out), sink(err));
    session.conn.end(stdin ?? '');
    await done;
    session.conn.destroy();
    return { exitCode: await session.exitCode(), stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  }

  /** Removes every container and volume of this run, and nothing else; fails if any of it would not go. */
  async cleanUp(): Promise<void> {
    const failed = await this.removeLabelled();
    this.engine.close();
    if (failed.length) throw new Error(`the Fly stand-in could not remove all it made: ${failed.map((e) => e.message).join('; ')}`);
  }

  /** The engine client sends JSON only; an archive upload is a raw tar body. */
  private putArchive(id: string, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const socketPath = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
      const req = http.request({ socketPath, method: 'PUT', path: `/v1.41/containers/${id}/archive?path=/`, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`docker archive upload: ${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** A ustar archive of files (owned by root) and the directories above them. */
function tar(files: Array<{ path: string; mode: number; content: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const f of files) {
    const segments = f.path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/') + '/';
      if (!dirs.has(dir)) {
        dirs.add(dir);
        parts.push(ustarHeader(dir, 0, 0o755, '5'));
      }
    }
    parts.push(ustarHeader(segments.join('/'), f.content.length, f.mode), f.content, Buffer.alloc((512 - (f.content.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

