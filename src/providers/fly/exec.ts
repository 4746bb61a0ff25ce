/**
 * @module Provider.exec over Fly's exec call, which is request/response: the input goes up as one string and the
 * output comes back as two. So input is read whole first (large inputs go up in pieces into a file), and a small
 * shell wrapper in the machine base64-encodes what the command prints, which keeps binary output (a tar of the
 * workspace) intact through JSON. Fly runs exec as root; the wrapper drops to the workspace user.
 */
import type { Readable } from 'node:stream';
import { UserError } from '../../protocol/errors.js';
import type { ExecHandle, ExecOptions } from '../provider.js';
import type { FlyApi, FlyExecResult } from './api.js';

/** Input sent inline with the command; more goes up first, in pieces of this size. */
const PIECE_BYTES = 2 << 20;
/** Fly holds the whole exchange in memory on both sides: beyond this, exec is the wrong tool. */
export const MAX_EXEC_INPUT_BYTES = 256 << 20;
/**
 * Input that stops coming without ending means the caller is waiting for output first (a protocol spoken over
 * exec, like the snapshot agent's), which a request/response exec can never give it.
 */
const INPUT_IDLE_MS = 10_000;
/** Exit codes the wrapper itself uses (the command's own codes pass through). */
const WRAPPER_FAILED = 125;

/**
 * $1 user (a name or uid; 'root' for none), $2 working directory, $3 file holding the input ('' when it comes on
 * stdin, as base64); then the command. Its stdout and stderr come back base64-encoded on the wrapper's own.
 */
const WRAPPER = `
u="$1"; d="$2"; f="$3"; shift 3
if [ "$u" != root ]; then
  e=$(getent passwd "$u") || { echo "claude-vm: the workspace has no user $u" | base64 >&2; exit 126; }
  n=\${e%%:*}; h=$(echo "$e" | cut -d: -f6)
fi
t=$(mktemp -d) || exit ${WRAPPER_FAILED}
trap 'rm -rf "$t"' EXIT
if [ -n "$f" ]; then mv "$f" "$t/in" || exit ${WRAPPER_FAILED}; else base64 -d > "$t/in" || exit ${WRAPPER_FAILED}; fi
cd "$d" 2>/dev/null || { echo "claude-vm: no directory $d in the workspace" | base64 >&2; exit 126; }
if [ "$u" = root ]; then "$@"; else runuser -u "$n" -- env HOME="$h" "$@"; fi <"$t/in" >"$t/out" 2>"$t/err"
c=$?
base64 "$t/out"; base64 "$t/err" >&2
exit $c
`;

export interface FlyExecTarget {
  api: FlyApi;
  app: string;
  machine: string;
  /** The workspace user's name or uid. */
  user: string;
  timeoutS: number;
}

export async function flyExec(t: FlyExecTarget, opts: ExecOptions & { cwd: string }): Promise<ExecHandle> {
  if (opts.tty) {
    throw new UserError(
      'invalid_argument',
      "Fly's exec API has no terminal, so this provider cannot open an interactive shell through it.",
      'SSH goes through the workspace daemon instead: `claude-vm config-ssh`, then `ssh <id>.claude-vm`.',
    );
  }
  const user = opts.asRoot ? 'root' : t.user;
  const env = opts.env ?? {};
  const command = [...(Object.keys(env).length ? ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)] : []), ...opts.argv];
  const exit = (async () => {
    const input = opts.stdin ? await readAll(opts.stdin) : Buffer.alloc(0);
    let file = '';
    let inline = input;
    if (input.length > PIECE_BYTES) {
      file = await upload(t, input);
      inline = Buffer.alloc(0);
    }
    const r = await t.api.exec(t.app, t.machine, { command: ['sh', '-c', WRAPPER, 'sh', user, opts.cwd, file, ...command], stdin: inline.toString('base64'), timeout: t.timeoutS });
    return deliver(r, opts);
  })();
  return { exit, resize: () => undefined };
}

/** Writes the decoded output and returns the exit status (128 + signal for a killed command, as a shell would). */
function deliver(r: FlyExecResult, opts: ExecOptions): number {
  const code = r.exit_signal ? 128 + r.exit_signal : r.exit_code ?? 1;
  if (code === WRAPPER_FAILED) {
    throw new UserError('provider_unavailable', `Running a command on the Fly Machine failed: ${(r.stderr || r.stdout || 'no output').trim().split('\n')[0]}.`, 'The image needs sh, base64, mktemp and runuser (Debian and Ubuntu have them).');
  }
  opts.stdout.write(Buffer.from(r.stdout ?? '', 'base64'));
  (opts.stderr ?? opts.stdout).write(Buffer.from(r.stderr ?? '', 'base64'));
  return code;
}

/** Puts a large input into a file in the machine, a piece per call; returns its path. */
async function upload(t: FlyExecTarget, input: Buffer): Promise<string> {
  const path = `/tmp/claude-vm-input-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  for (let at = 0; at < input.length; at += PIECE_BYTES) {
    const piece = input.subarray(at, at + PIECE_BYTES).toString('base64');
    const r = await t.api.exec(t.app, t.machine, { command: ['sh', '-c', `umask 077; base64 -d ${at === 0 ? '>' : '>>'} "$1"`, 'sh', path], stdin: piece, timeout: t.timeoutS });
    if (r.exit_code !== 0) throw new UserError('provider_unavailable', `Sending input to the Fly Machine failed: ${(r.stderr ?? '').trim().split('\n')[0] || `exit ${r.exit_code}`}.`);
  }
  return path;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let idle: NodeJS.Timeout | undefined;
  return new Promise<Buffer>((resolve, reject) => {
    const fail = (e: unknown) => {
      clearTimeout(idle);
      stream.off('data', onData);
      reject(e);
    };
    const waitForMore = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        stream.destroy();
        fail(new UserError(
          'invalid_argument',
          "This command talks back and forth over its input and output, which Fly's request/response exec cannot carry.",
          'On Fly, snapshots and other streaming commands need the workspace daemon; the files stay on the volume.',
        ));
      }, INPUT_IDLE_MS);
    };
    const onData = (chunk: Buffer | string) => {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      size += b.length;
      if (size > MAX_EXEC_INPUT_BYTES) {
        stream.destroy();
        return fail(new UserError(
          'invalid_argument',
          `The input for this command is over ${MAX_EXEC_INPUT_BYTES >> 20} MiB, more than Fly's request/response exec can carry.`,
          'Copy large data with `git clone` inside the workspace, or through the workspace daemon (`claude-vm sync`).',
        ));
      }
      chunks.push(b);
      waitForMore();
    };
    stream.on('data', onData);
    stream.once('end', () => (clearTimeout(idle), resolve(Buffer.concat(chunks))));
    stream.once('error', fail);
    waitForMore();
  });
}
