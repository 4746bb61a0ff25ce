/**
 * @module Team mode: a daemon call for a workspace whose tunnel another control-plane process holds goes to that
 * process. The processes share the secret key; a request carries a MAC of its body and a timestamp under a key
 * derived from it, so nothing else can make a process call a daemon.
 */
import { UserError, type ErrorCode } from '../protocol/errors.js';
import type { SecretBox } from '../store/secrets.js';

export const FORWARD_PATH = '/api/v1/internal/daemon-call';
const MAX_SKEW_MS = 60_000;

export interface ForwardedCall {
  workspaceId: string;
  method: string;
  params: Record<string, unknown>;
}

export async function forwardDaemonCall(url: string, box: SecretBox, call: ForwardedCall): Promise<unknown> {
  const body = JSON.stringify({ ...call, at: Date.now() });
  let res: Response;
  try {
    res = await fetch(url.replace(/\/$/, '') + FORWARD_PATH, { method: 'POST', headers: { 'content-type': 'application/json', 'x-claude-vm-mac': box.mac('daemon-call', body) }, body });
  } catch (e) {
    throw new UserError('provider_unavailable', `The control-plane process holding this workspace's tunnel does not answer (${(e as Error).message}).`);
  }
  const answer = (await res.json().catch(() => ({}))) as { result?: unknown; error?: { code: string; message: string; hint?: string } };
  if (!res.ok || answer.error) {
    const e = answer.error ?? { code: 'provider_unavailable', message: `HTTP ${res.status}` };
    throw new UserError(e.code as ErrorCode, e.message, e.hint);
  }
  return answer.result;
}

/** Checks a forwarded call's MAC and age; returns the call, or throws `unauthorized`. */
export function verifyForwarded(box: SecretBox, body: string, mac: string | undefined): ForwardedCall {
  const expected = box.mac('daemon-call', body);
  if (!mac || mac.length !== expected.length || !timingSafe(mac, expected)) throw new UserError('unauthorized', 'Not a forwarded call from this deployment.');
  const call = JSON.parse(body) as ForwardedCall & { at: number };
  if (Math.abs(Date.now() - call.at) > MAX_SKEW_MS) throw new UserError('unauthorized', 'A stale forwarded call.');
  return call;
}

function timingSafe(a: string, b: string): boolean {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
