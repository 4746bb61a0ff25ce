/**
 * @module Exec into a pod over the API server's WebSocket channel protocol (`v5.channel.k8s.io`, or `v4` for
 * terminals on older servers). Each binary message is one byte of channel then data: 0 stdin, 1 stdout, 2 stderr,
 * 3 the final status (a v1 Status), 4 terminal resize; v5 adds 255 to close a channel, which is how a command
 * gets end-of-input (`tar -x` finishing). Written here rather than through the client library's Exec, which
 * closes the whole connection when input ends on v4, ends the caller's streams, and ignores back-pressure.
 */
import WebSocket from 'ws';
import type { Readable, Writable } from 'node:stream';
import { UserError } from '../../protocol/errors.js';
import type { ExecHandle } from '../provider.js';

const V5 = 'v5.channel.k8s.io';
const V4 = 'v4.channel.k8s.io';
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const RESIZE = 4;
const CLOSE = 255;
/** Input waits while this much is queued on the socket, so a large upload does not pile up in memory. */
const HIGH_WATER = 1 << 20;

export interface ChannelExec {
  /** wss://host/api/v1/namespaces/ns/pods/name/exec?… */
  url: string;
  /** Headers and TLS settings from the kubeconfig (KubeConfig.applyToHTTPSOptions). */
  options: WebSocket.ClientOptions;
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  tty?: { rows: number; cols: number };
}

interface Status {
  status?: string;
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ reason?: string; message?: string }> };
}

export async function channelExec(o: ChannelExec): Promise<ExecHandle> {
  const ws = new WebSocket(o.url, [V5, V4], o.options);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => reject(refused(res.statusCode ?? 500, body)));
    });
    ws.once('error', reject);
  });
  if (o.stdin && !o.tty && ws.protocol !== V5) {
    ws.close();
    throw new UserError(
      'provider_unavailable',
      `The Kubernetes API server speaks ${ws.protocol || 'no channel protocol'}, not ${V5}, so a command cannot be told its input ended.`,
      'claude-vm needs Kubernetes 1.30 or later.',
    );
  }
  const send = (channel: number, data: Buffer | string, cb?: (err?: Error) => void) => {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    ws.send(Buffer.concat([Buffer.from([channel]), body]), cb);
  };
  let status: Status | undefined;
  ws.on('message', (data: Buffer) => {
    const channel = data[0];
    const body = data.subarray(1);
    const out = channel === STDOUT ? o.stdout : channel === STDERR ? o.stderr : undefined;
    if (out) {
      // A slow reader (a snapshot being stored) slows the command instead of filling this process's memory.
      if (!out.write(body)) {
        ws.pause();
        out.once('drain', () => ws.resume());
      }
    } else if (channel === STATUS) {
      status = JSON.parse(body.toString('utf8')) as Status;
    }
  });
  const exit = new Promise<number>((resolve, reject) => {
    ws.once('close', () => resolve(exitCode(status, o.stderr)));
    ws.once('error', reject);
  });
  if (o.stdin) {
    const stdin = o.stdin;
    stdin.on('data', (chunk: Buffer | string) => {
      send(STDIN, chunk);
      if (ws.bufferedAmount > HIGH_WATER) {
        stdin.pause();
        const wait = setInterval(() => {
          if (ws.bufferedAmount <= HIGH_WATER / 4 || ws.readyState !== WebSocket.OPEN) {
            clearInterval(wait);
            stdin.resume();
          }
        }, 5);
      }
    });
    stdin.once('end', () => {
      if (ws.protocol === V5 && ws.readyState === WebSocket.OPEN) ws.send(Buffer.from([CLOSE, STDIN]));
    });
    void exit.finally(() => stdin.pause()).catch(() => undefined);
  }
  const resize = (rows: number, cols: number) => {
    if (ws.readyState === WebSocket.OPEN) send(RESIZE, JSON.stringify({ Width: cols, Height: rows }));
  };
  if (o.tty) resize(o.tty.rows, o.tty.cols);
  return { exit, resize };
}

/** The exit code from the status channel: Success is 0; a failure carries its code as an ExitCode cause. */
function exitCode(status: Status | undefined, stderr: Writable): number {
  if (!status) return 1;
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (cause?.message && /^\d+$/.test(cause.message)) return Number(cause.message);
  // Not the command's own failure (it could not be started): say why, as Docker's exec would.
  stderr.write(`${status.message ?? 'the command could not be run'}\n`);
  return 126;
}

function refused(code: number, body: string): Error {
  let message = body.trim();
  try {
    message = (JSON.parse(body) as Status).message ?? message;
  } catch {
    // Not a Status: keep the text.
  }
  if (code === 404) return new UserError('wrong_state', `The workspace pod is not there (${message || 'not found'}).`, 'Start it with `claude-vm workspace up <id>`.');
  if (code === 400 && /not running|is waiting|pending|terminated/i.test(message)) {
    return new UserError('wrong_state', `The workspace pod is not running (${message}).`, 'Start it with `claude-vm workspace up <id>`.');
  }
  return new UserError('provider_unavailable', `The Kubernetes API server refused the exec (HTTP ${code}${message ? `: ${message}` : ''}).`);
}
