/**
 * @module How a workspace container is confined: no new privileges, every capability dropped except the few a
 * foreign image's root bootstrap needs, CPU, memory and process limits per size, and optionally a read-only root.
 * The agent runs as the non-root workspace user inside, in its skip-permissions mode: these are its walls.
 */
import { UserError } from '../../protocol/errors.js';
import type { SizeSpec } from '../provider.js';

/**
 * What the bootstrap of a foreign image (src/providers/docker/bootstrap.ts) needs as root, found by running it
 * with less: useradd writes /etc/shadow and /etc/gshadow and chowns the new home (CHOWN, FOWNER), copies
 * /etc/skel into that home once it belongs to the user (DAC_OVERRIDE), and /workspace is handed to the user (CHOWN).
 * Images built for claude-vm start as the user and need none. No process of the workspace user can use these:
 * it is not root, and no-new-privileges stops setuid binaries and file capabilities from making it so.
 */
const BOOTSTRAP_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'];

/** Processes and threads (a Node process has about ten) per size: room for builds and test runners, not for a fork bomb. */
export const PIDS_LIMITS: Record<string, number> = { small: 1024, medium: 2048, large: 4096 };

export interface HardeningInput {
  size: SizeSpec;
  pids: number;
  /** The engine's own CPU count and memory, which a limit may not exceed (Docker refuses that). */
  engine: { cpus?: number; memoryBytes?: number };
  /** Built from image/Dockerfile: the user exists in the image, and the container starts as that user. */
  native: boolean;
  readOnlyRoot: boolean;
}

/** The HostConfig fields that confine a workspace container. */
export function hardenedHostConfig(i: HardeningInput): Record<string, unknown> {
  if (i.readOnlyRoot && !i.native) {
    throw new UserError(
      'invalid_argument',
      'A read-only root needs an image built for claude-vm: other images get their user added to /etc/passwd at start.',
      'Use the claude-vm image (`claude-vm image build`), or set the provider option read-only-root=false.',
    );
  }
  const cpus = Math.min(i.size.cpus, i.engine.cpus ?? i.size.cpus);
  const memory = Math.min(i.size.memoryMb * 1024 * 1024, i.engine.memoryBytes ?? Infinity);
  return {
    NanoCpus: Math.round(cpus * 1e9),
    Memory: memory,
    // The same figure for memory plus swap: a memory hog is stopped at the limit instead of thrashing the host's swap.
    MemorySwap: memory,
    PidsLimit: i.pids,
    CapDrop: ['ALL'],
    CapAdd: i.native ? [] : BOOTSTRAP_CAPS,
    SecurityOpt: ['no-new-privileges'],
    ...(i.readOnlyRoot ? { ReadonlyRootfs: true, Tmpfs: writableTmpfs(memory) } : {}),
  };
}

/**
 * With a read-only root, what stays writable besides the /workspace volume. /home/dev only holds links into
 * /workspace/.home (the entrypoint makes them at every start) and dotfiles Docker copies up from the image;
 * the tmpfs sizes count against the memory limit, so they are a share of it.
 */
function writableTmpfs(memory: number): Record<string, string> {
  const mb = (share: number) => `${Math.max(64, Math.floor(memory / 1024 / 1024 / share))}m`;
  // exec: build tools and agents run scripts they put in /tmp; Docker's tmpfs default is noexec.
  const opts = 'rw,exec,nosuid,nodev';
  return {
    '/tmp': `${opts},size=${mb(4)}`,
    '/var/tmp': `${opts},size=${mb(16)}`,
    '/run': `${opts},size=64m`,
    '/home/dev': `${opts},size=${mb(8)},uid=1000,gid=1000,mode=0755`,
  };
}

/** `read-only-root` option: true or false, anything else is a typo worth saying so. */
export function readOnlyRootOption(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new UserError('invalid_argument', `The docker option read-only-root must be true or false, not "${value}".`);
}
