/** @module Connects to a Docker engine (local socket, DOCKER_HOST, or a provider `host` option) and maps its errors. */
import Docker from 'dockerode';
import { UserError, errorMessage } from '../../protocol/errors.js';

export function connectEngine(host?: string): { docker: Docker; where: string } {
  const where = host || process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (!host) return { docker: new Docker(), where };
  const url = new URL(host);
  switch (url.protocol) {
    case 'unix:':
      return { docker: new Docker({ socketPath: url.pathname }), where };
    case 'tcp:':
    case 'http:':
      return { docker: new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' }), where };
    case 'https:':
      return { docker: new Docker({ host: url.hostname, port: Number(url.port || 2376), protocol: 'https' }), where };
    default:
      throw new UserError('invalid_argument', `Unsupported Docker host "${host}".`, 'Use unix:///path/to/docker.sock or tcp://host:port.');
  }
}

/** HTTP status carried by dockerode errors, if any. */
export function statusOf(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null && 'statusCode' in e ? Number((e as { statusCode: unknown }).statusCode) : undefined;
}

/** Docker's own explanation (`json.message`) is more useful than dockerode's "(HTTP code 500) server error". */
export function dockerMessage(e: unknown): string {
  const json = typeof e === 'object' && e !== null && 'json' in e ? (e as { json: unknown }).json : undefined;
  if (json && typeof json === 'object' && 'message' in json) return String((json as { message: unknown }).message);
  if (Buffer.isBuffer(json)) return json.toString('utf8').trim();
  return errorMessage(e).replace(/^\(HTTP code \d+\) [a-z ]+ - /, '').trim();
}

export async function pingEngine(docker: Docker, where: string): Promise<void> {
  try {
    await withTimeout(docker.ping(), 5000, 'no answer in 5 s');
  } catch (e) {
    throw new UserError(
      'provider_unavailable',
      `Cannot reach the Docker engine at ${where} (${errorMessage(e)}).`,
      'Start Docker (e.g. `sudo systemctl start docker`), set DOCKER_HOST, or use `--provider local`.',
      { cause: e },
    );
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]);
}
