/** @module The one small contract every provider implements. Richer features (copying files in, shells) are built on exec. */
import type { Readable, Writable } from 'node:stream';
import type { ProgressFn } from '../protocol/types.js';
import type { EgressSpec } from './egress-policy.js';

/** What the core asks a provider to create. Providers may ignore fields they cannot honour. */
export interface WorkspaceSpec {
  id: string;
  image: string;
  /** Labels that let an operator find claude-vm's resources (`docker ps --filter label=…`). */
  labels: Record<string, string>;
  env: Record<string, string>;
  /** One of the factory's sizes; sets CPU, memory and process limits where the provider can. */
  size?: string;
  /** The control plane's unix-socket directory on this host, for providers that can mount it (local engines). */
  controlPlaneSocketDir?: string;
  /** The control plane's `--public-url`, for remote providers to refuse early when their workspaces could not dial it. */
  controlPlanePublicUrl?: string;
  /** What the workspace may reach on the network; providers that filter add their own needs (their tunnel's host). */
  egress?: EgressSpec;
}

/** Where the control plane can be reached from the machine running this process. */
export interface ControlPlaneEndpoints {
  /** The loopback URL it listens on (http://127.0.0.1:port). */
  url: string;
  /** Its unix socket on this host. */
  socketPath: string;
  /** What remote workspaces dial (`--public-url`), if set. */
  publicUrl?: string;
  /** Where the other processes of a team deployment reach this one (`--internal-url`); default `url`. */
  internalUrl?: string;
}

export interface SizeSpec {
  cpus: number;
  memoryMb: number;
}

/** Provider-owned identifiers, stored verbatim in the state store and handed back on every call. */
export type ResourceRefs = Record<string, string>;

export type RuntimeState = 'running' | 'stopped' | 'missing' | 'error';

export interface RuntimeStatus {
  state: RuntimeState;
  /** One sentence for `error`/`missing` (e.g. "container exited with code 137 (out of memory)"). */
  detail?: string;
}

export interface ExecOptions {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Run as root instead of the workspace user (set-up steps only). */
  asRoot?: boolean;
  /** Allocate a terminal of this size; stdout then carries the merged output. */
  tty?: { rows: number; cols: number };
  stdin?: Readable;
  stdout: Writable;
  stderr?: Writable;
}

export interface ExecHandle {
  /** Resolves with the command's exit status. */
  exit: Promise<number>;
  resize(rows: number, cols: number): void;
}

export interface LogOptions {
  follow?: boolean;
  tail?: number;
  stdout: Writable;
}

export interface Provider {
  readonly type: string;
  /** False for providers that run on the host unconfined; the CLI says so plainly. */
  readonly isolates: boolean;
  /** The directory that persists across stop/start; the project lives under it. */
  readonly workspaceRoot: (refs: ResourceRefs) => string;

  /** Throws a UserError naming the fix when the backend cannot be used (engine down, image missing…). */
  check(spec?: Pick<WorkspaceSpec, 'image'>, progress?: ProgressFn): Promise<void>;
  /**
   * Creates the workspace's resources. On failure it removes whatever it made before rethrowing,
   * so callers never have to clean up a half-created workspace.
   */
  create(spec: WorkspaceSpec, progress?: ProgressFn): Promise<ResourceRefs>;
  start(refs: ResourceRefs, progress?: ProgressFn): Promise<void>;
  stop(refs: ResourceRefs, opts?: { force?: boolean }): Promise<void>;
  /** Removes the compute; with `purge` also the persistent storage. Succeeds if already gone. */
  delete(refs: ResourceRefs, opts: { purge: boolean }): Promise<void>;
  status(refs: ResourceRefs): Promise<RuntimeStatus>;
  exec(refs: ResourceRefs, opts: ExecOptions): Promise<ExecHandle>;
  logs(refs: ResourceRefs, opts: LogOptions): Promise<void>;
  /** The URL the workspace daemon dials to reach the control plane (its tunnel goes out, never in). */
  tunnelUrl(refs: ResourceRefs, cp: ControlPlaneEndpoints): string;
}

/** Options a provider type accepts, shown by `provider add --help` and validated on add/set-options. */
export interface ProviderOptionSpec {
  name: string;
  description: string;
  default?: string;
  /** `provider add` refuses to add the provider without it. */
  required?: boolean;
}

export interface ProviderFactory {
  type: string;
  description: string;
  isolates: boolean;
  options: ProviderOptionSpec[];
  sizes: Record<string, SizeSpec>;
  defaultSize: string;
  /** US dollars per hour for a size, from the provider's price table or options; 0 for your own machine. */
  pricePerHour(size: string, options: Record<string, string>): number;
  /** Checks option values when the provider is added or changed, before anything connects; throws a UserError. */
  validate?(options: Record<string, string>): void;
  /**
   * For providers whose workspaces reach the control plane through the provider's own connection (an SSH tunnel):
   * the control plane calls this at start for each such provider with running workspaces, and the connection
   * is then kept up, so their daemons reconnect without anyone touching the workspace.
   */
  keepConnected?(options: Record<string, string>, home: string): void;
  /** `home` is $CLAUDE_VM_HOME; options are already unsealed. */
  create(options: Record<string, string>, home: string): Provider;
}
