/**
 * @module The Docker Engine calls the Fly and Kubernetes stand-ins share to back machines and pods with real
 * containers. Everything a stand-in makes carries its one label, so counting and removing what it made touches
 * nothing else on the engine (other tests, the user's own containers).
 */
import type { Duplex } from 'node:stream';
import { connectEngine, statusOf, type Engine } from '../../src/providers/docker/engine.js';

/** A rejection handler that takes the engine's `statuses` as "already so" (gone, started, stopped) and rethrows the rest. */
export function unless(...statuses: number[]): (e: unknown) => Promise<undefined> {
  return (e) => (statuses.includes(statusOf(e) ?? 0) ? Promise.resolve(undefined) : Promise.reject(e));
}

export interface ExecSession {
  /** Docker's exec id, for resizing its terminal. */
  id: string;
  /** The hijacked connection: input in; output out, multiplexed unless the session has a terminal. */
  conn: Duplex;
  /** The command's exit code, once `conn` has ended. */
  exitCode(): Promise<number>;
}

export class LabelledDocker {
  readonly engine: Engine = connectEngine();

  constructor(
    private readonly labelKey: string,
    private readonly labelValue: string,
  ) {}

  /** The labels to put on every container and volume made. */
  get labels(): Record<string, string> {
    return { [this.labelKey]: this.labelValue };
  }

  async imageExists(image: string): Promise<boolean> {
    return this.engine.call('GET', `/images/${encodeURIComponent(image)}/json`).then(() => true, (e) => (statusOf(e) === 404 ? false : Promise.reject(e)));
  }

  /** Docker's NanoCpus for a CPU count, capped at the engine's own: it refuses a container more CPUs than it has. */
  async nanoCpus(cpus: number): Promise<number> {
    const info = await this.engine.call<{ NCPU?: number }>('GET', '/info');
    return Math.round(Math.min(cpus, info.NCPU ?? cpus) * 1e9);
  }

  async createVolume(name: string): Promise<void> {
    await this.engine.call('POST', '/volumes/create', { Name: name, Labels: this.labels });
  }

  async removeVolume(name: string): Promise<void> {
    await this.engine.call('DELETE', `/volumes/${name}`).catch(unless(404));
  }

  async start(id: string): Promise<void> {
    await this.engine.call('POST', `/containers/${id}/start`).catch(unless(304));
  }

  async remove(id: string): Promise<void> {
    await this.engine.call('DELETE', `/containers/${id}?force=true`).catch(unless(404));
  }

  /** Starts `cmd` in a running container, attached (stdout and stderr always, stdin when asked). */
  async openExec(container: string, o: { cmd: string[]; user?: string; stdin: boolean; tty: boolean }): Promise<ExecSession> {
    const { Id } = await this.engine.call<{ Id: string }>('POST', `/containers/${container}/exec`, {
      Cmd: o.cmd,
      ...(o.user ? { User: o.user } : {}),
      AttachStdin: o.stdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: o.tty,
    });
    const conn = await this.engine.hijack(`/exec/${Id}/start`, { Detach: false, Tty: o.tty });
    const exitCode = async () => (await this.engine.call<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`)).ExitCode ?? 1;
    return { id: Id, conn, exitCode };
  }

  /** What carries the label now: container ids and volume names. */
  async labelled(): Promise<{ containers: string[]; volumes: string[] }> {
    const filter = encodeURIComponent(JSON.stringify({ label: [`${this.labelKey}=${this.labelValue}`] }));
    const containers = await this.engine.call<Array<{ Id: string }>>('GET', `/containers/json?all=1&filters=${filter}`);
    const { Volumes } = await this.engine.call<{ Volumes: Array<{ Name: string }> | null }>('GET', `/volumes?filters=${filter}`);
    return { containers: containers.map((c) => c.Id), volumes: (Volumes ?? []).map((v) => v.Name) };
  }

  /** How much is left (for asserting nothing leaked). */
  async leftovers(): Promise<{ containers: number; volumes: number }> {
    const { containers, volumes } = await this.labelled();
    return { containers: containers.length, volumes: volumes.length };
  }

  /** Removes every labelled container, then every labelled volume, and nothing else; returns what failed. */
  async removeLabelled(): Promise<Error[]> {
    const { containers, volumes } = await this.labelled();
    const failed: Error[] = [];
    for (const id of containers) await this.remove(id).catch((e: Error) => failed.push(e));
    for (const name of volumes) await this.removeVolume(name).catch((e: Error) => failed.push(e));
    return failed;
  }
}
