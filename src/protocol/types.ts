/** @module Public shapes that cross the client boundary (CLI today, HTTP API later). No I/O here. */

// `deleted`: the compute is gone but the data is kept (volume now, snapshots later); `up` brings it back.
export const WORKSPACE_STATUSES = ['creating', 'starting', 'running', 'stopping', 'stopped', 'deleting', 'deleted', 'error'] as const;
export type WorkspaceStatus = (typeof WORKSPACE_STATUSES)[number];

export interface ProviderInfo {
  name: string;
  type: string;
  /** Option values; secret ones are replaced by "********" before they leave the store. */
  options: Record<string, string>;
  isolates: boolean;
  createdAt: string;
}

export interface ProjectInfo {
  id: string;
  name: string;
  /** Where the files came from: an absolute local path, a git URL, or "" for an empty workspace. */
  source: string;
  sourceKind: 'path' | 'git' | 'empty';
}

export interface WorkspaceInfo {
  id: string;
  name: string | null;
  project: ProjectInfo;
  provider: string;
  providerType: string;
  image: string;
  branch: string | null;
  /** Absolute path of the project inside the workspace; `exec` and `ssh` start here. */
  projectDir: string;
  status: WorkspaceStatus;
  /** Why the workspace is in `error` (or the last failure), in one sentence. */
  statusReason: string | null;
  createdAt: string;
  updatedAt: string;
  /** Last time the workspace was started; null while stopped. */
  startedAt: string | null;
  /** Provider-specific size name (small, medium, large, or a Fly machine preset); it sets limits and price. */
  size: string;
  /** Stop after this many idle seconds (no turn running, nobody attached); null: never. */
  autoStopSeconds: number | null;
  lastActivityAt: string | null;
  stoppedAt: string | null;
  /** Running time over the workspace's whole life, in seconds. */
  uptimeSeconds: number;
  /** uptime × the size's price; 0 where running costs nothing (a local engine without a price set). */
  costUsd: number;
  /**
   * What the workspace may reach on the network, where the provider reports it: `allowlist` (only `allow`), `open`
   * (anything), `off` (no network).
   */
  egress?: { mode: 'allowlist' | 'open' | 'off'; allow: string[] };
}

export type SnapshotReason = 'manual' | 'down' | 'idle' | 'periodic' | 'delete' | 'export';

/** One snapshot of a workspace, as listed; the manifest with every path is kept beside it in the store. */
export interface SnapshotInfo {
  id: string;
  workspaceId: string;
  createdAt: string;
  reason: SnapshotReason;
  files: number;
  /** Size of the files it holds. */
  bytes: number;
  /** Of those, bytes the previous snapshot did not already hold. */
  newBytes: number;
  /** Bytes this snapshot added to the store (compressed). */
  storedBytes: number;
  /** Paths that could not be read (first 20). */
  skipped: string[];
  durationMs: number;
  projectDir: string;
  /** Enough to rebuild the workspace's record elsewhere (import, another server). */
  workspace: { name: string | null; image: string; branch: string | null; project: string; size: string };
}

export interface UpRequest {
  /** Workspace id/name prefix (resume), git URL, local path, or undefined for an empty workspace. */
  target?: string;
  provider?: string;
  image?: string;
  branch?: string;
  name?: string;
  size?: string;
  /** Seconds of idleness before an automatic stop; 0 turns it off. Default: the server's policy. */
  autoStopSeconds?: number;
  /** Names (`*.example.com` for subdomains), IPs or CIDRs added to the workspace's egress allowlist. */
  allowDomains?: string[];
}

export interface DeleteRequest {
  /** Also remove what outlives the container: the volume (and, later, snapshots). */
  purge?: boolean;
}

/** Progress of a long operation, rendered by the CLI and later streamed by the API. */
export interface ProgressEvent {
  step: string;
  detail?: string;
  /** 0..1 when known. */
  fraction?: number;
}
export type ProgressFn = (e: ProgressEvent) => void;
