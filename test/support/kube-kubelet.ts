/**
 * @module The stand-in cluster's one node: each pod is a real container on the local dockerd (the image from the
 * pod spec, each PersistentVolumeClaim a Docker volume, the Secret's keys as environment, host networking as the
 * cluster network), and exec is Docker's exec translated to the Kubernetes channel protocol. Everything it makes
 * carries the stand-in's label, so it removes exactly what it made.
 */
import { Writable } from 'node:stream';
import type WebSocket from 'ws';
import { demux, statusOf } from '../../src/providers/docker/engine.js';
import { LabelledDocker } from './labelled-docker.js';

export const NODE_NAME = 'k8sstandin-node';

/** What the kubelet needs of a pod, already resolved by the API server side (secrets, claims). */
export interface PodRun {
  container: string;
  image: string;
  env: string[];
  user?: string;
  workingDir?: string;
  command?: string[];
  args?: string[];
  mounts: Array<{ volume: string; target: string }>;
  memoryBytes?: number;
  cpus?: number;
}

export type ContainerState =
  | { kind: 'running'; startedAt: string }
  | { kind: 'exited'; exitCode: number; finishedAt: string; reason: string }
  | { kind: 'missing' };

export class Kubelet extends LabelledDocker {
  constructor(label: string) {
    super(label, '1');
  }

  async run(name: string, pod: PodRun): Promise<void> {
    for (const m of pod.mounts) await this.createVolume(m.volume);
    await this.engine.call('POST', `/containers/create?name=${name}`, {
      Image: pod.image,
      Env: pod.env,
      Labels: this.labels,
      ...(pod.user ? { User: pod.user } : {}),
      ...(pod.workingDir ? { WorkingDir: pod.workingDir } : {}),
      ...(pod.command ? { Entrypoint: pod.command } : {}),
      ...(pod.args ? { Cmd: pod.args } : {}),
      HostConfig: {
        NetworkMode: 'host',
        Mounts: pod.mounts.map((m) => ({ Type: 'volume', Source: m.volume, Target: m.target })),
        ...(pod.memoryBytes ? { Memory: pod.memoryBytes } : {}),
        ...(pod.cpus ? { NanoCpus: await this.nanoCpus(pod.cpus) } : {}),
      },
    });
    await this.start(name);
  }

  async state(name: string): Promise<ContainerState> {
    try {
      const { State } = await this.engine.call<{ State: { Running: boolean; ExitCode: number; StartedAt: string; FinishedAt: string; OOMKilled: boolean } }>('GET', `/containers/${name}/json`);
      if (State.Running) return { kind: 'running', startedAt: State.StartedAt };
      return { kind: 'exited', exitCode: State.ExitCode, finishedAt: State.FinishedAt, reason: State.OOMKilled ? 'OOMKilled' : State.ExitCode ? 'Error' : 'Completed' };
    } catch (e) {
      if (statusOf(e) === 404) return { kind: 'missing' };
      throw e;
    }
  }

  /** As the kubelet does: SIGTERM, then SIGKILL after the grace period. */
  async kill(name: string, graceSeconds: number): Promise<void> {
    await this.engine.call('POST', `/containers/${name}/stop?t=${graceSeconds}`).catch(() => undefined);
    await this.engine.call('DELETE', `/containers/${name}?force=true`).catch(() => undefined);
  }

  async logs(name: string, follow: boolean, tail: number | undefined, out: Writable): Promise<void> {
    const res = await this.engine.stream('GET', `/containers/${name}/logs?stdout=1&stderr=1&follow=${follow ? 1 : 0}${tail !== undefined ? `&tail=${tail}` : ''}`);
    out.once('close', () => res.destroy());
    await demux(res, out, out);
  }

  /**
   * One exec session on an accepted WebSocket: channel 0 in, 1 and 2 out, 3 the final v1 Status, 4 resize; on
   * v5, [255, 0] closes stdin. `status` builds the Status for an exit code.
   */
  async exec(name: string, ws: WebSocket, o: { command: string[]; stdin: boolean; tty: boolean; v5: boolean }, status: (code: number) => object): Promise<void> {
    // The client may send input as soon as the socket opens, before Docker's exec exists: keep it until then.
    const early: Buffer[] = [];
    const keep = (data: Buffer) => early.push(data);
    ws.on('message', keep);
    const { id, conn, exitCode } = await this.openExec(name, { cmd: o.command, stdin: o.stdin, tty: o.tty });
    const channel = (n: number) =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (ws.readyState !== ws.OPEN) return cb();
          ws.send(Buffer.concat([Buffer.from([n]), chunk]), () => cb());
        },
      });
    const done = o.tty
      ? new Promise<void>((resolve, reject) => {
          conn.pipe(channel(1));
          conn.on('end', resolve).on('close', resolve).on('error', reject);
        })
      : demux(conn, channel(1), channel(2));
    if (!o.stdin) conn.end();
    const onMessage = (data: Buffer) => {
      const body = data.subarray(1);
      if (data[0] === 0 && o.stdin) conn.write(body);
      else if (data[0] === 4) {
        // Go's JSON decoding of TerminalSize ignores case: {"Width":…} and {"width":…} are both accepted.
        const size = Object.fromEntries(Object.entries(JSON.parse(body.toString('utf8')) as Record<string, number>).map(([k, v]) => [k.toLowerCase(), v]));
        void this.engine.call('POST', `/exec/${id}/resize?h=${size.height}&w=${size.width}`).catch(() => undefined);
      } else if (data[0] === 255 && o.v5 && body[0] === 0) conn.end();
    };
    ws.off('message', keep);
    for (const data of early) onMessage(data);
    ws.on('message', onMessage);
    ws.on('close', () => conn.destroy());
    await done.catch(() => undefined);
    conn.destroy();
    const code = await exitCode();
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(status(code)))]));
    ws.close(1000);
  }

  /**
   * Removes every container and volume carrying this stand-in's label. Best effort: a pod whose grace period is
   * still running at close has its own removal under way, and may hold its container or volume a moment longer.
   */
  async cleanUp(): Promise<void> {
    await this.removeLabelled();
    this.engine.close();
  }
}
