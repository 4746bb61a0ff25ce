/**
 * @module A stand-in for Fly's Machines API, for tests: an HTTP server that checks every request and every answer
 * against Fly's published Swagger document (test/fixtures/fly-machines-openapi.json) and records what does not
 * conform, so a test can assert there was none. It implements the operations the Fly provider uses, with the
 * machine life cycle (created → started → stopped or suspended → destroyed), waits that answer 408 when the state
 * does not come in time, leases (409 for someone else's nonce), and faults a test can ask for: rate limits, server
 * errors, timeouts, regions without capacity. Machines are real containers on the local dockerd.
 *
 * Where the spec says nothing (error statuses, what a lease blocks), it follows Fly's documentation: errors are
 * the spec's ErrorResponse; a mutation of a leased machine needs the `fly-machine-lease-nonce` header.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO } from './cli.js';
import { DockerBacking } from './fly-standin-docker.js';
import { SwaggerCheck, type Dialect, type MatchedOperation } from './swagger-check.js';

export const FLY_SPEC = join(REPO, 'test', 'fixtures', 'fly-machines-openapi.json');
/** The spec declares few error statuses; Fly's documentation says every error answer is an ErrorResponse. */
const FLY_DIALECT: Dialect = { undeclaredErrorSchema: { $ref: '#/definitions/ErrorResponse' } };

type Json = Record<string, unknown>;
interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
interface StandinVolume {
  id: string;
  name: string;
  region: string;
  size_gb: number;
  encrypted: boolean;
  state: string;
  created_at: string;
  attached_machine_id?: string;
  dockerVolume: string;
}
interface StandinEvent {
  id: string;
  type: string;
  status: string;
  source: string;
  timestamp: number;
}
interface StandinMachine {
  id: string;
  name: string;
  region: string;
  state: string;
  instance_id: string;
  config: Json;
  created_at: string;
  updated_at: string;
  events: StandinEvent[];
  container?: string;
  lease?: { nonce: string; expiresAt: number; owner: string; description: string };
}
export interface Fault {
  operationId: string;
  status: number;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  error?: string;
  retryAfterSeconds?: number;
}
export interface RecordedRequest {
  operationId: string;
  method: string;
  path: string;
  status: number;
}

const STATES_OF_WAIT = ['started', 'stopped', 'suspended', 'destroyed', 'failed', 'settled'];

export class FlyStandin {
  readonly violations: string[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly apps = new Map<string, { id: string; name: string; org: string }>();
  readonly volumes = new Map<string, StandinVolume>();
  readonly machines = new Map<string, StandinMachine>();
  /** Regions where creating volumes and machines fails as Fly fails when it is full. */
  readonly fullRegions = new Set<string>();
  private readonly faults: Fault[] = [];
  private readonly changed = new Set<() => void>();
  private readonly pending = new Set<Promise<unknown>>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly token: string,
    readonly regions: string[],
    readonly backing: DockerBacking,
    private readonly check: SwaggerCheck,
  ) {}

  static async start(opts: { token: string; apps?: Array<{ name: string; org: string }>; regions?: string[]; network?: string }): Promise<FlyStandin> {
    const runId = `flystandin-${randomBytes(4).toString('hex')}`;
    let self: FlyStandin | undefined;
    const server = createServer((req, res) => void self!.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    self = new FlyStandin(server, url, opts.token, opts.regions ?? ['iad', 'ord', 'ams', 'fra'], new DockerBacking(runId, opts.network ?? 'bridge'), new SwaggerCheck(FLY_SPEC, FLY_DIALECT));
    for (const a of opts.apps ?? []) self.apps.set(a.name, { id: randomId(12), name: a.name, org: a.org });
    return self;
  }

  /** The next `times` requests to an operation fail with `status` (429 with Retry-After, 503, 408…). */
  inject(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }

  /** Takes a machine's lease as another client would (flyctl, a second control plane); returns its nonce. */
  holdLease(machineId: string, description = 'another client'): string {
    const m = this.machines.get(machineId)!;
    m.lease = { nonce: randomId(12), expiresAt: Date.now() + 3600_000, owner: 'someone-else@example.com', description };
    return m.lease.nonce;
  }

  dropLease(machineId: string): void {
    delete this.machines.get(machineId)!.lease;
  }

  count(operationId: string, status?: number): number {
    return this.requests.filter((r) => r.operationId === operationId && (status === undefined || r.status === status)).length;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    await this.backing.cleanUp();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const where = `${method} ${url.pathname}`;
    const send = (m: MatchedOperation | undefined, a: Answer) => {
      const text = a.body === undefined ? '' : JSON.stringify(a.body);
      if (m) {
        for (const p of this.check.checkResponse(m, a.status, a.body, a.body !== undefined)) this.violations.push(`${where} → ${a.status} (stand-in answer): ${p}`);
        this.requests.push({ operationId: m.operationId, method, path: url.pathname, status: a.status });
      }
      res.writeHead(a.status, { ...(text ? { 'Content-Type': 'application/json' } : {}), ...a.headers });
      res.end(text);
    };
    const basePath = this.check.doc.basePath ?? '';
    if (!url.pathname.startsWith(basePath + '/')) {
      this.violations.push(`${where}: not below the spec's basePath ${basePath}`);
      return send(undefined, { status: 404, body: { error: 'not found' } });
    }
    const m = this.check.match(method, url.pathname.slice(basePath.length));
    if (!m) {
      this.violations.push(`${where}: no such operation in the spec`);
      return send(undefined, { status: 404, body: { error: 'not found' } });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(m, { status: 401, body: { error: 'You must be authenticated to view this.' } });
    let body: unknown;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        this.violations.push(`${where}: the body is not JSON`);
        return send(m, { status: 400, body: { error: 'invalid JSON body' } });
      }
    }
    if (raw && !(req.headers['content-type'] ?? '').includes('application/json')) this.violations.push(`${where}: a JSON body without Content-Type: application/json`);
    for (const p of this.check.checkRequest(m, url.searchParams, req.headers, body, raw !== '')) this.violations.push(`${where} (${m.operationId}): ${p}`);

    const fault = this.faults.find((f) => f.operationId === m.operationId && (f.times ?? 1) > 0);
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      return send(m, {
        status: fault.status,
        body: { error: fault.error ?? `injected ${fault.status}` },
        ...(fault.retryAfterSeconds ? { headers: { 'Retry-After': String(fault.retryAfterSeconds) } } : {}),
      });
    }
    try {
      send(m, await this.operate(m, url.searchParams, req.headers, (body ?? {}) as Json));
    } catch (e) {
      send(m, { status: 500, body: { error: `stand-in: ${(e as Error).message}` } });
    }
  }

  private async operate(m: MatchedOperation, query: URLSearchParams, headers: IncomingMessage['headers'], body: Json): Promise<Answer> {
    const app = this.apps.get(m.params.app_name ?? '');
    if (m.operationId === 'Apps_create') {
      const name = String(body.name);
      if (this.apps.has(name)) return error(409, `app ${name} already exists`);
      this.apps.set(name, { id: randomId(12), name, org: String(body.org_slug) });
      return { status: 201 };
    }
    if (!app) return error(404, `app ${m.params.app_name} not found`);
    if (m.operationId === 'Apps_show') {
      return { status: 200, body: { id: app.id, name: app.name, status: 'deployed', machine_count: [...this.machines.values()].filter((x) => x.state !== 'destroyed').length, volume_count: this.volumes.size } };
    }
    if (m.operationId.startsWith('Volume')) return this.volumeOperation(m, body);
    if (m.operationId === 'Machines_create') return this.createMachine(body);
    const machine = this.machines.get(m.params.machine_id ?? '');
    if (!machine) return error(404, `machine ${m.params.machine_id} not found`);
    const nonce = headers['fly-machine-lease-nonce'] as string | undefined;
    const lease = machine.lease && machine.lease.expiresAt > Date.now() ? machine.lease : undefined;
    if (!lease) delete machine.lease;
    const leaseConflict = () => error(409, `machine ${machine.id} has a lease held by ${lease!.owner} (${lease!.description}); pass its nonce in fly-machine-lease-nonce`);
    switch (m.operationId) {
      case 'Machines_show':
        return { status: 200, body: this.view(machine) };
      case 'Machines_show_lease':
        return lease ? { status: 200, body: this.leaseView(machine) } : error(404, 'no active lease');
      case 'Machines_create_lease': {
        if (lease && lease.nonce !== nonce) return leaseConflict();
        const ttl = Number(body.ttl ?? 30);
        machine.lease = { nonce: lease?.nonce ?? randomId(12), expiresAt: Date.now() + ttl * 1000, owner: 'claude-vm-test@example.com', description: String(body.description ?? '') };
        return { status: 200, body: this.leaseView(machine) };
      }
      case 'Machines_release_lease':
        if (lease && lease.nonce !== nonce) return leaseConflict();
        delete machine.lease;
        return { status: 200 };
      case 'Machines_wait':
        return this.waitFor(machine, query);
      case 'Machines_list_events': {
        const limit = Math.min(Number(query.get('limit') ?? 20), 50);
        return { status: 200, body: machine.events.slice().reverse().slice(0, limit) };
      }
      case 'Machines_exec':
        return this.exec(machine, body);
    }
    // What remains changes the machine: a lease someone else holds blocks it.
    if (lease && lease.nonce !== nonce) return leaseConflict();
    if (machine.state === 'destroyed') return error(404, `machine ${machine.id} not found (destroyed)`);
    switch (m.operationId) {
      case 'Machines_start':
        if (['started', 'starting'].includes(machine.state)) return { status: 200 };
        if (!['created', 'stopped', 'suspended'].includes(machine.state)) return error(412, `machine is ${machine.state}, cannot start`);
        this.background(machine, 'starting', 'start', 'started', async () => {
          if (await this.backing.paused(machine.container!)) await this.backing.unpause(machine.container!);
          else await this.backing.start(machine.container!);
        });
        return { status: 200 };
      case 'Machines_stop': {
        if (['stopped', 'stopping', 'created'].includes(machine.state)) return { status: 200 };
        const kill = body.signal === 'SIGKILL';
        this.background(machine, 'stopping', 'stop', 'stopped', async () => {
          if (await this.backing.paused(machine.container!)) await this.backing.unpause(machine.container!);
          await this.backing.stop(machine.container!, kill);
        });
        return { status: 200 };
      }
      case 'Machines_suspend':
        if (machine.state === 'suspended') return { status: 200 };
        if (machine.state !== 'started') return error(412, `machine is ${machine.state}, only a started machine can be suspended`);
        this.background(machine, 'suspending', 'suspend', 'suspended', () => this.backing.pause(machine.container!));
        return { status: 200 };
      case 'Machines_delete':
        if (['started', 'starting'].includes(machine.state) && query.get('force') !== 'true') return error(412, 'failed_precondition: machine still active, refusing to destroy');
        this.background(machine, 'destroying', 'destroy', 'destroyed', async () => {
          await this.backing.remove(machine.container!);
          for (const v of this.volumes.values()) if (v.attached_machine_id === machine.id) delete v.attached_machine_id;
          delete machine.lease;
        });
        return { status: 200 };
      default:
        this.violations.push(`${m.operationId}: the provider called an operation the stand-in does not implement`);
        return error(501, `${m.operationId} is not implemented by the stand-in`);
    }
  }

  private async volumeOperation(m: MatchedOperation, body: Json): Promise<Answer> {
    const volume = this.volumes.get(m.params.volume_id ?? '');
    switch (m.operationId) {
      case 'Volumes_list':
        return { status: 200, body: [...this.volumes.values()].filter((v) => v.state !== 'destroyed').map(volumeView) };
      case 'Volumes_create': {
        const region = String(body.region ?? '');
        if (!this.regions.includes(region)) return error(400, `region "${region}" not found`);
        if (this.fullRegions.has(region)) return error(400, 'no capacity');
        const v: StandinVolume = {
          id: `vol_${randomId(16)}`,
          name: String(body.name),
          region,
          size_gb: Number(body.size_gb ?? 1),
          encrypted: body.encrypted !== false,
          state: 'created',
          created_at: new Date().toISOString(),
          dockerVolume: '',
        };
        v.dockerVolume = `${this.backing.runId}-${v.id}`;
        await this.backing.createVolume(v.dockerVolume);
        this.volumes.set(v.id, v);
        return { status: 200, body: volumeView(v) };
      }
      case 'Volumes_get_by_id':
        return volume ? { status: 200, body: volumeView(volume) } : error(404, 'volume not found');
      case 'Volume_delete': {
        if (!volume || volume.state === 'destroyed') return error(404, 'volume not found');
        if (volume.attached_machine_id) return error(412, `volume is attached to machine ${volume.attached_machine_id}`);
        await this.backing.removeVolume(volume.dockerVolume);
        volume.state = 'destroyed';
        return { status: 200, body: volumeView(volume) };
      }
      default:
        this.violations.push(`${m.operationId}: the provider called an operation the stand-in does not implement`);
        return error(501, `${m.operationId} is not implemented by the stand-in`);
    }
  }

  private async createMachine(body: Json): Promise<Answer> {
    const config = (body.config ?? {}) as Json;
    const region = String(body.region ?? this.regions[0]);
    if (!this.regions.includes(region)) return error(400, `region "${region}" not found`);
    if (this.fullRegions.has(region)) return { status: 412, body: { error: 'insufficient resources to create new machine', status: 'insufficient_capacity' } };
    const image = String(config.image ?? '');
    if (!(await this.backing.imageExists(image))) return error(400, `image ${image} not found in any registry the stand-in knows (it serves local images)`);
    const name = String(body.name ?? `machine-${randomId(6)}`);
    if ([...this.machines.values()].some((x) => x.name === name && x.state !== 'destroyed')) return error(409, `a machine named ${name} already exists`);
    const mounts: Array<{ dockerVolume: string; path: string }> = [];
    for (const mount of (config.mounts ?? []) as Json[]) {
      const v = this.volumes.get(String(mount.volume));
      if (!v || v.state === 'destroyed') return error(400, `volume ${String(mount.volume)} not found`);
      if (v.region !== region) return error(400, `volume ${v.id} is in ${v.region}, not ${region}`);
      if (v.attached_machine_id) return error(400, `volume ${v.id} is already attached to machine ${v.attached_machine_id}`);
      mounts.push({ dockerVolume: v.dockerVolume, path: String(mount.path) });
    }
    const guest = (config.guest ?? {}) as Json;
    const init = (config.init ?? {}) as Json;
    const id = randomBytes(7).toString('hex');
    const now = new Date().toISOString();
    const machine: StandinMachine = { id, name, region, state: 'created', instance_id: ulid(), config, created_at: now, updated_at: now, events: [] };
    machine.container = await this.backing.createContainer({
      name: `${this.backing.runId}-${id}`,
      image,
      ...(init.cmd ? { cmd: init.cmd as string[] } : {}),
      ...(init.entrypoint ? { entrypoint: init.entrypoint as string[] } : {}),
      env: (config.env ?? {}) as Record<string, string>,
      files: ((config.files ?? []) as Json[]).map((f) => ({ path: String(f.guest_path), mode: Number(f.mode ?? 0o644), content: Buffer.from(String(f.raw_value ?? ''), 'base64') })),
      mounts,
      cpus: Number(guest.cpus ?? 1),
      memoryMb: Number(guest.memory_mb ?? 256),
    });
    for (const mount of (config.mounts ?? []) as Json[]) this.volumes.get(String(mount.volume))!.attached_machine_id = id;
    this.machines.set(id, machine);
    this.event(machine, 'launch', 'created');
    if (body.lease_ttl) machine.lease = { nonce: randomId(12), expiresAt: Date.now() + Number(body.lease_ttl) * 1000, owner: 'claude-vm-test@example.com', description: 'created with lease_ttl' };
    const answer = { ...this.view(machine), ...(machine.lease ? { nonce: machine.lease.nonce } : {}) };
    if (!body.skip_launch) this.background(machine, 'starting', 'start', 'started', () => this.backing.start(machine.container!));
    return { status: 200, body: answer };
  }

  private async waitFor(machine: StandinMachine, query: URLSearchParams): Promise<Answer> {
    const wanted = (query.getAll('state').join(',') || 'started').split(',').filter((s) => STATES_OF_WAIT.includes(s));
    const timeoutMs = Math.min(Number(query.get('timeout') ?? 60), 60) * 1000;
    const reached = () => wanted.includes(machine.state) || (wanted.includes('settled') && ['started', 'stopped', 'suspended', 'destroyed', 'failed'].includes(machine.state));
    const end = Date.now() + timeoutMs;
    while (!reached()) {
      const left = end - Date.now();
      if (left <= 0) return error(408, `deadline_exceeded: machine ${machine.id} did not reach ${wanted.join(',')} (it is ${machine.state})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => (this.changed.delete(resolve), resolve()), left);
        this.changed.add(() => (clearTimeout(timer), resolve()));
      });
    }
    return { status: 200, body: { ok: true, state: machine.state, version: machine.instance_id, event_id: machine.events.at(-1)?.id ?? '' } };
  }

  private async exec(machine: StandinMachine, body: Json): Promise<Answer> {
    if (machine.state !== 'started') return error(412, `machine is ${machine.state}, not started`);
    const command = body.command ? (body.command as string[]) : ['sh', '-c', String(body.cmd ?? '')];
    const r = await this.backing.exec(machine.container!, command, body.stdin === undefined ? undefined : String(body.stdin));
    return { status: 200, body: { exit_code: r.exitCode, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') } };
  }

  /** Moves the machine through `passing` to `final`, doing `work` in between, as flyd does after answering. */
  private background(machine: StandinMachine, passing: string, eventType: string, final: string, work: () => Promise<void>): void {
    this.event(machine, eventType, passing);
    const p = work().then(
      () => this.event(machine, eventType, final),
      (e: Error) => this.event(machine, eventType, 'failed', `stand-in: ${e.message}`),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private event(machine: StandinMachine, type: string, state: string, status = state): void {
    machine.state = state;
    machine.updated_at = new Date().toISOString();
    machine.events.push({ id: ulid(), type, status, source: state.endsWith('ing') ? 'user' : 'flyd', timestamp: Date.now() });
    for (const wake of [...this.changed]) wake();
    this.changed.clear();
  }

  private view(m: StandinMachine): Json {
    const image = String(m.config.image ?? '');
    const [repository, tag] = image.includes(':') ? [image.slice(0, image.lastIndexOf(':')), image.slice(image.lastIndexOf(':') + 1)] : [image, 'latest'];
    return {
      id: m.id,
      name: m.name,
      state: m.state,
      region: m.region,
      instance_id: m.instance_id,
      private_ip: `fdaa:0:1:a7b:${m.id.slice(0, 4)}::2`,
      config: m.config,
      image_ref: { registry: 'local', repository, tag },
      created_at: m.created_at,
      updated_at: m.updated_at,
      events: m.events.slice(-5).reverse(),
    };
  }

  private leaseView(m: StandinMachine): Json {
    const l = m.lease!;
    return { nonce: l.nonce, expires_at: Math.floor(l.expiresAt / 1000), owner: l.owner, description: l.description, version: m.instance_id };
  }
}

function volumeView(v: StandinVolume): Json {
  const { dockerVolume: _d, attached_machine_id, ...rest } = v;
  return { ...rest, fstype: 'ext4', zone: `${v.region}-a`, host_status: 'ok', ...(attached_machine_id ? { attached_machine_id } : {}) };
}

function error(status: number, message: string): Answer {
  return { status, body: { error: message } };
}

function randomId(n: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}

function ulid(): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  return [...randomBytes(26)].map((b) => alphabet[b % 32]).join('');
}
