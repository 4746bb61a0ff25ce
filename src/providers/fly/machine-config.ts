/** @module What claude-vm asks Fly for: the Machine config of a workspace, and the names of its Fly resources. */
import { isSecretOption } from '../../store/secrets.js';
import type { WorkspaceSpec } from '../provider.js';
import type { FlyFile, FlyMachineConfig, FlyService } from './api.js';
import type { FlySize } from './prices.js';

export const WORKSPACE_PATH = '/workspace';
/** Where values that must not sit in the machine's environment (visible in its config) are written, one file each. */
export const SECRETS_DIR = '/run/claude-vm/secrets';

/** Fly volume names: lower-case letters, digits and underscores, at most 30 characters. */
export function volumeName(workspaceId: string): string {
  return `cvm_${workspaceId.replace(/[^a-z0-9]/g, '_')}`.slice(0, 30);
}

export function machineName(workspaceId: string): string {
  return `claude-vm-${workspaceId}`;
}

export interface MachineConfigInput {
  spec: WorkspaceSpec;
  size: FlySize;
  volumeId: string;
  /** off: claude-vm's own idle stop decides; stop/suspend: Fly's proxy also stops an unused machine. */
  autoStop: 'off' | 'stop' | 'suspend';
  /** The port of a web service in the workspace that Fly's proxy routes to (and wakes the machine for). */
  servicePort?: number;
}

export function machineConfig(i: MachineConfigInput): FlyMachineConfig {
  const env: Record<string, string> = {};
  const files: FlyFile[] = [];
  // Secret-looking values become root-only files: a machine's env is shown by `fly machine status`.
  for (const [k, v] of Object.entries(i.spec.env)) {
    if (isSecretOption(k)) files.push({ guest_path: `${SECRETS_DIR}/${k}`, raw_value: Buffer.from(v).toString('base64'), mode: 0o400 });
    else env[k] = v;
  }
  return {
    image: i.spec.image,
    guest: { cpu_kind: i.size.cpuKind, cpus: i.size.cpus, memory_mb: i.size.memoryMb },
    env,
    ...(files.length ? { files } : {}),
    mounts: [{ volume: i.volumeId, path: WORKSPACE_PATH }],
    metadata: i.spec.labels,
    // Keep the machine up whatever the image would run: claude-vm's image idles the same way, others may exit.
    init: { cmd: ['sleep', 'infinity'] },
    restart: { policy: 'on-failure', max_retries: 5 },
    auto_destroy: false,
    ...(i.autoStop !== 'off' || i.servicePort ? { services: [service(i)] } : {}),
  };
}

/**
 * Fly's proxy stops (or suspends) a machine whose service has had no traffic for a few minutes and starts it again
 * on the next request. It only sees traffic through the proxy: the daemon's tunnel goes out, so an agent working
 * with nobody browsing the service counts as idle. That is why it is off unless asked for.
 */
function service(i: MachineConfigInput): FlyService {
  return {
    protocol: 'tcp',
    internal_port: i.servicePort ?? 8080,
    autostop: i.autoStop,
    autostart: true,
    min_machines_running: 0,
    ports: [
      { port: 80, handlers: ['http'] },
      { port: 443, handlers: ['tls', 'http'] },
    ],
  };
}
