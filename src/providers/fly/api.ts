/**
 * @module A small typed client for the Fly Machines API (https://api.machines.dev/v1, Swagger 2.0): only the
 * calls the provider makes, with retries on rate limits and server errors, waits that loop on 408, and leases.
 * Shapes follow the published spec (test/fixtures/fly-machines-openapi.json); the Fly stand-in checks them.
 */
import { UserError } from '../../protocol/errors.js';

export interface FlyMachineGuest {
  cpu_kind: string;
  cpus: number;
  memory_mb: number;
}
export interface FlyFile {
  guest_path: string;
  raw_value: string;
  mode: number;
}
export interface FlyService {
  protocol: string;
  internal_port: number;
  autostop: 'off' | 'stop' | 'suspend';
  autostart: boolean;
  min_machines_running: number;
  ports: Array<{ port: number; handlers: string[] }>;
}
export interface FlyMachineConfig {
  image: string;
  guest: FlyMachineGuest;
  env: Record<string, string>;
  files?: FlyFile[];
  mounts: Array<{ volume: string; path: string }>;
  metadata: Record<string, string>;
  init: { cmd: string[] };
  restart: { policy: 'no' | 'always' | 'on-failure'; max_retries?: number };
  auto_destroy: boolean;
  services?: FlyService[];
}
export interface FlyMachine {
  id: string;
  name?: string;
  state: string;
  region?: string;
  instance_id?: string;
  nonce?: string;
  config?: Partial<FlyMachineConfig>;
}
export interface FlyVolume {
  id: string;
  name: string;
  state?: string;
  region?: string;
  size_gb?: number;
  attached_machine_id?: string;
}
export interface FlyLease {
  nonce?: string;
  expires_at?: number;
  owner?: string;
  description?: string;
}
export interface FlyEvent {
  id?: string;
  type?: string;
  status?: string;
  source?: string;
  timestamp?: number;
}
export interface FlyExecResult {
  exit_code?: number;
  exit_signal?: number;
  stdout?: string;
  stderr?: string;
}
export type WaitState = 'started' | 'stopped' | 'suspended' | 'destroyed';

export class FlyApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The spec's ErrorResponse.status: "insufficient_capacity" when Fly says so. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'FlyApiError';
  }
}

export function statusOf(e: unknown): number | undefined {
  return e instanceof FlyApiError ? e.status : undefined;
}

/**
 * Fly has no one capacity status: a full region answers machine creates with 412 "insufficient resources", volume
 * creates with 400 "no capacity", starts with 409 "insufficient memory", and some answers carry
 * `status: insufficient_capacity`. These are worth another region; other 4xx are not.
 */
export function isCapacityError(e: unknown): boolean {
  if (!(e instanceof FlyApiError)) return false;
  if (e.code === 'insufficient_capacity') return true;
  return [400, 403, 409, 412].includes(e.status) && /capacity|insufficient (resources|memory)|over the allowed quota/i.test(e.message);
}

export interface FlyApiOptions {
  baseUrl: string;
  token: string;
  /** Attempts for one call on 429/5xx/network errors; backoff doubles from `firstDelayMs` (test hook). */
  attempts?: number;
  firstDelayMs?: number;
  onRetry?: (what: string, attempt: number, e: unknown) => void;
}

interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  nonce?: string;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/** How long a wait call may block on Fly's side (its maximum is 60 s). */
const WAIT_SLICE_S = 60;

export class FlyApi {
  private readonly base: string;

  constructor(private readonly o: FlyApiOptions) {
    this.base = o.baseUrl.replace(/\/+$/, '') + '/v1';
  }

  /** One call with retries: a rate limit or a server error is worth trying again, with backoff and jitter. */
  async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const attempts = this.o.attempts ?? 6;
    let delay = this.o.firstDelayMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once<T>(method, path, opts);
      } catch (e) {
        const retryable = e instanceof FlyApiError ? RETRYABLE.has(e.status) : isNetworkError(e);
        if (!retryable || attempt >= attempts) throw e;
        this.o.onRetry?.(`${method} ${path}`, attempt, e);
        const after = e instanceof RetryAfterError ? e.afterMs : 0;
        await sleep(Math.max(after, delay * (0.75 + Math.random() / 2)));
        delay = Math.min(delay * 2, 8000);
      }
    }
  }

  private async once<T>(method: string, path: string, opts: CallOptions): Promise<T> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { Authorization: `Bearer ${this.o.token}`, Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.nonce) headers['fly-machine-lease-nonce'] = opts.nonce;
    const res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    if (res.ok) return (text ? JSON.parse(text) : undefined) as T;
    let message = text.trim() || `HTTP ${res.status}`;
    let code: string | undefined;
    try {
      const parsed = JSON.parse(text) as { error?: string; status?: string };
      message = parsed.error || message;
      code = parsed.status;
    } catch {
      // Not JSON (a proxy's error page): keep the text.
    }
    const retryAfter = Number(res.headers.get('retry-after'));
    if (res.status === 429 && retryAfter > 0) throw new RetryAfterError(res.status, message, code, Math.min(retryAfter, 30) * 1000);
    throw new FlyApiError(res.status, message, code);
  }

  getApp(app: string): Promise<unknown> {
    return this.call('GET', `/apps/${enc(app)}`);
  }

  createApp(app: string, org: string): Promise<void> {
    return this.call('POST', '/apps', { body: { name: app, org_slug: org } });
  }

  listVolumes(app: string): Promise<FlyVolume[]> {
    return this.call('GET', `/apps/${enc(app)}/volumes`);
  }

  createVolume(app: string, body: { name: string; region: string; size_gb: number; encrypted: boolean }): Promise<FlyVolume> {
    return this.call('POST', `/apps/${enc(app)}/volumes`, { body });
  }

  deleteVolume(app: string, id: string): Promise<FlyVolume> {
    return this.call('DELETE', `/apps/${enc(app)}/volumes/${enc(id)}`);
  }

  createMachine(app: string, body: { name: string; region: string; config: FlyMachineConfig; lease_ttl: number }): Promise<FlyMachine> {
    return this.call('POST', `/apps/${enc(app)}/machines`, { body });
  }

  getMachine(app: string, id: string): Promise<FlyMachine> {
    return this.call('GET', `/apps/${enc(app)}/machines/${enc(id)}`);
  }

  startMachine(app: string, id: string, nonce: string): Promise<void> {
    return this.call('POST', `/apps/${enc(app)}/machines/${enc(id)}/start`, { nonce });
  }

  stopMachine(app: string, id: string, nonce: string, signal?: string): Promise<void> {
    return this.call('POST', `/apps/${enc(app)}/machines/${enc(id)}/stop`, { nonce, body: signal ? { signal } : {} });
  }

  suspendMachine(app: string, id: string, nonce: string): Promise<void> {
    return this.call('POST', `/apps/${enc(app)}/machines/${enc(id)}/suspend`, { nonce });
  }

  destroyMachine(app: string, id: string, nonce: string): Promise<void> {
    return this.call('DELETE', `/apps/${enc(app)}/machines/${enc(id)}`, { nonce, query: { force: true } });
  }

  exec(app: string, id: string, body: { command: string[]; stdin?: string; timeout: number }): Promise<FlyExecResult> {
    return this.call('POST', `/apps/${enc(app)}/machines/${enc(id)}/exec`, { body });
  }

  events(app: string, id: string, limit = 50): Promise<FlyEvent[]> {
    return this.call('GET', `/apps/${enc(app)}/machines/${enc(id)}/events`, { query: { limit } });
  }

  /**
   * Waits until the machine is in `state`. Fly blocks for at most 60 s and answers 408 when the state has not come
   * yet; that is no failure, so this asks again until `deadlineMs` has passed.
   */
  async wait(app: string, id: string, state: WaitState, deadlineMs: number, version?: string): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const left = Math.ceil((end - Date.now()) / 1000);
      try {
        await this.call('GET', `/apps/${enc(app)}/machines/${enc(id)}/wait`, { query: { state, timeout: Math.max(1, Math.min(WAIT_SLICE_S, left)), version } });
        return;
      } catch (e) {
        if (statusOf(e) !== 408) throw e;
        if (Date.now() >= end) {
          throw new UserError('provider_unavailable', `Fly Machine ${id} did not reach "${state}" within ${Math.round(deadlineMs / 1000)} s.`, 'See `claude-vm workspace logs <id>` for the machine\'s events.');
        }
      }
    }
  }

  /**
   * Runs `fn` holding the machine's lease, so two claude-vm processes (or flyctl) never change one machine at once.
   * A lease someone else holds is waited for, up to `waitMs`; then the error names its holder.
   */
  async withLease<T>(app: string, id: string, what: string, fn: (nonce: string) => Promise<T>, waitMs = 15_000): Promise<T> {
    const nonce = await this.acquireLease(app, id, what, waitMs);
    try {
      return await fn(nonce);
    } finally {
      await this.releaseLease(app, id, nonce);
    }
  }

  private async acquireLease(app: string, id: string, what: string, waitMs: number): Promise<string> {
    const end = Date.now() + waitMs;
    for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
      try {
        const lease = await this.call<FlyLease>('POST', `/apps/${enc(app)}/machines/${enc(id)}/lease`, { body: { description: `claude-vm: ${what}`, ttl: 120 } });
        if (!lease?.nonce) throw new UserError('provider_unavailable', `Fly did not hand out a lease for machine ${id}.`);
        return lease.nonce;
      } catch (e) {
        if (statusOf(e) !== 409) throw e;
        if (Date.now() + delay > end) {
          const holder = await this.call<FlyLease>('GET', `/apps/${enc(app)}/machines/${enc(id)}/lease`).catch(() => undefined);
          const who = holder?.description || holder?.owner;
          throw new UserError(
            'wrong_state',
            `Fly Machine ${id} is locked by another operation${who ? ` (${who})` : ''}, so it was not changed.`,
            'Try again when that operation is done; `fly machine leases clear` removes a stale lock.',
            { cause: e },
          );
        }
        await sleep(delay);
      }
    }
  }

  /** Best effort: a lease that cannot be released expires by itself (its ttl). */
  async releaseLease(app: string, id: string, nonce: string): Promise<void> {
    await this.call('DELETE', `/apps/${enc(app)}/machines/${enc(id)}/lease`, { nonce }).catch(() => undefined);
  }
}

class RetryAfterError extends FlyApiError {
  constructor(status: number, message: string, code: string | undefined, readonly afterMs: number) {
    super(status, message, code);
  }
}

function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError && /fetch failed/i.test(e.message);
}

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
