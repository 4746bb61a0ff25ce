/**
 * @module Remote Docker host provider: workspaces are containers on any machine with Docker that you can SSH to.
 * It is the Docker provider talking to the remote engine through an SSH tunnel (see tunnel.ts); nothing but sshd
 * has to listen on the remote host, and the workspace daemons reach the control plane back through the same tunnel.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { UserError } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import type { ProviderFactory } from '../provider.js';
import { DOCKER_SIZES, DockerProvider, dockerProviderFactory, scaledPrice, type EngineConnection } from '../docker/index.js';
import { Engine, connectEngine, pingEngine } from '../docker/engine.js';
import { pullImage } from '../docker/pull.js';
import { tunnelFor, type SshTarget } from './tunnel.js';

function sshTunnel(options: Record<string, string>, home: string) {
  // The control plane's socket lives at a fixed place under its home (see server.ts); its hash names the remote dir.
  const label = createHash('sha256').update(home).digest('hex').slice(0, 12);
  return tunnelFor(parseTarget(options), join(home, 'run', 'server.sock'), join(home, 'run'), label);
}

function connection(options: Record<string, string>, home: string): EngineConnection {
  const tunnel = sshTunnel(options, home);
  const engine = new Engine(`unix://${tunnel.engineSocket}`);
  return {
    engine,
    onThisMachine: false,
    ready: (progress?: ProgressFn) => tunnel.ready(progress),
    ping: () =>
      pingEngine(engine).catch((e: unknown) => {
        throw new UserError('provider_unavailable', `The Docker engine on ${tunnel.where} did not answer through SSH.`, `Check \`docker info\` on ${tunnel.where}.`, { cause: e });
      }),
    controlPlaneDir: () => tunnel.remoteDir,
    provideImage: (image, progress) => copyOrPull(engine, image, tunnel.where, progress),
  };
}

/**
 * An image the remote engine lacks comes from this machine's engine when it has it (images built here, such as the
 * offline-built workspace image, are in no registry); otherwise the remote engine pulls it.
 */
async function copyOrPull(remote: Engine, image: string, where: string, progress?: ProgressFn): Promise<void> {
  const local = connectEngine();
  try {
    // Not here either (or no engine here): the remote engine pulls it from a registry.
    const size = await local.call<{ Size?: number }>('GET', `/images/${encodeURIComponent(image)}/json`).then((i) => i.Size ?? 0, () => undefined);
    if (size === undefined) return await pullImage(remote, image, progress);
    progress?.({ step: 'Copying image', detail: `${image} → ${where}` });
    const tar = await local.stream('GET', `/images/${encodeURIComponent(image)}/get`);
    let sent = 0;
    let shown = 0;
    tar.on('data', (d: Buffer) => {
      sent += d.length;
      // The tarball is about the image's size; say how far along it is every ~5%.
      if (size && sent - shown > size / 20) {
        shown = sent;
        progress?.({ step: 'Copying image', detail: `${(sent / 1e6).toFixed(0)} MB`, fraction: Math.min(sent / size, 1) });
      }
    });
    const answer = await remote.upload<string>('/images/load?quiet=1', tar);
    const error = /"error(?:Detail)?":\s*(?:"([^"]*)"|\{"message":"([^"]*)")/.exec(answer);
    if (error) throw new Error(error[1] ?? error[2]);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError('image_missing', `Could not copy image ${image} to ${where}: ${(e as Error).message}.`, 'Push it to a registry the remote host can pull from, or free space there.', { cause: e });
  } finally {
    local.close();
  }
}

/** `host=user@box` (or `ssh://user@box:2222`) plus the separate options, checked before anything connects. */
function parseTarget(options: Record<string, string>): SshTarget {
  let destination = options.host?.trim() ?? '';
  let port = options.port;
  const url = /^ssh:\/\/([^/:]+)(?::(\d+))?\/?$/.exec(destination);
  if (url) [destination, port] = [url[1]!, url[2] ?? port];
  if (!destination || destination.startsWith('-') || /\s/.test(destination)) {
    throw new UserError('invalid_argument', `The ssh provider needs --option host=user@box (got "${options.host ?? ''}").`);
  }
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new UserError('invalid_argument', `Invalid SSH port "${port}".`);
  return {
    destination,
    ...(port ? { port } : {}),
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options['known-hosts'] ? { knownHosts: options['known-hosts'] } : {}),
    dockerSocket: options['docker-socket'] || '/var/run/docker.sock',
  };
}

class SshDockerProvider extends DockerProvider {
  override readonly type = 'ssh';
}

export const sshProviderFactory: ProviderFactory = {
  type: 'ssh',
  description: 'Containers on a remote Docker host, reached over SSH (any VPS with Docker and sshd)',
  isolates: true,
  options: [
    { name: 'host', description: 'user@box, a Host from ~/.ssh/config, or ssh://user@box:port', required: true },
    { name: 'port', description: 'SSH port', default: '22 or your ssh config' },
    { name: 'identity', description: 'private key file', default: 'ssh-agent and your ssh config' },
    { name: 'known-hosts', description: 'known_hosts file to check the host key against', default: '~/.ssh/known_hosts' },
    { name: 'docker-socket', description: "the remote engine's socket", default: '/var/run/docker.sock' },
    // The engine there is driven exactly like a local one: its workspace options are the docker provider's.
    ...dockerProviderFactory.options.filter((o) => ['network', 'read-only-root', 'egress', 'allow-domains', 'egress-dns', 'egress-image'].includes(o.name)),
    { name: 'control-plane-url', description: 'URL workspaces dial instead of the SSH tunnel (a public control plane)', default: 'the control plane socket, forwarded over SSH' },
    { name: 'price-per-hour', description: 'what an hour of a medium workspace on that host costs you (small ×0.5, large ×2)', default: '0' },
  ],
  sizes: DOCKER_SIZES,
  defaultSize: 'medium',
  pricePerHour: (size, options) => scaledPrice(size, options),
  create: (options, home) => new SshDockerProvider(options, connection(options, home)),
  validate: (options) => void parseTarget(options),
  keepConnected: (options, home) => sshTunnel(options, home).keepUp(),
};
