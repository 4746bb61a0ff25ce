/**
 * @module A stand-in Kubernetes API server for tests, because no real one can run on this machine (no
 * kube-apiserver in Debian, no registry beyond npm). It serves the few operations the Kubernetes provider uses,
 * checks every request and every answer against the published OpenAPI spec (swagger-check.ts) and records what does
 * not fit in `violations`, and backs pods with real Docker containers (kube-kubelet.ts). Its controllers are the
 * minimum: a StatefulSet keeps pod `<name>-0` while it has a replica; a pod's deletion waits for its container to
 * stop; a claim in use is removed when its pod is gone. Like a real one it speaks HTTPS (a certificate made for
 * 127.0.0.1 at start, which its kubeconfig trusts) and wants a bearer token.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { REPO } from './cli.js';
import { SwaggerCheck, type MatchedOperation } from './swagger-check.js';
import { Kubelet, NODE_NAME, type PodRun } from './kube-kubelet.js';
import { selfSignedCertificate } from './tls.js';

/** The part of Kubernetes 1.34's OpenAPI (v2) spec the provider uses, cut by scripts/extract-kubernetes-openapi.mjs. */
const KUBE_SPEC = join(REPO, 'test', 'fixtures', 'kubernetes-openapi.json');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Kind = 'secrets' | 'persistentvolumeclaims' | 'pods' | 'statefulsets';

const KINDS: Record<Kind, { apiVersion: string; kind: string }> = {
  secrets: { apiVersion: 'v1', kind: 'Secret' },
  persistentvolumeclaims: { apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
  pods: { apiVersion: 'v1', kind: 'Pod' },
  statefulsets: { apiVersion: 'apps/v1', kind: 'StatefulSet' },
};

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class KubeStandIn {
  /** Unique per stand-in: names its namespace, and labels its containers and volumes. */
  readonly id = `k8sstandin-${randomBytes(4).toString('hex')}`;
  readonly namespace = this.id;
  readonly token = randomBytes(16).toString('hex');
  /** Every departure from the spec, by the client or by this stand-in. A passing test ends with none. */
  readonly violations: string[] = [];
  /** `METHOD operationId` of every request, in order. */
  readonly calls: string[] = [];
  // As the API server decodes JSON: null is an absent field, and a schema without properties (FieldsV1) takes any.
  readonly spec = new SwaggerCheck(KUBE_SPEC, { nullIsAbsent: true, propertylessObjectsAreOpen: true });
  url = '';
  private readonly store = new Map<string, Obj>();
  private readonly namespaces = new Set(['default']);
  private readonly kubelet = new Kubelet(this.id);
  private readonly tls = selfSignedCertificate();
  private readonly server: Server = createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => void this.handle(req, res));
  private readonly wss = new WebSocketServer({
    noServer: true,
    // A real API server prefers the newest channel protocol the client offers.
    handleProtocols: (offered) => ['v5.channel.k8s.io', 'v4.channel.k8s.io'].find((p) => offered.has(p)) ?? false,
  });
  private timer?: NodeJS.Timeout;
  private rv = 1;

  static async start(): Promise<KubeStandIn> {
    const s = new KubeStandIn();
    s.namespaces.add(s.namespace);
    s.server.on('upgrade', (req, socket, head) => void s.upgrade(req, socket as import('node:net').Socket, head));
    await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
    s.url = `https://127.0.0.1:${(s.server.address() as { port: number }).port}`;
    s.timer = setInterval(() => void s.reconcile().catch((e) => s.violations.push(`stand-in controller: ${(e as Error).message}`)), 200);
    return s;
  }

  /** A kubeconfig for this stand-in: its one context is `standin`, its user a bearer token. */
  writeKubeconfig(dir: string): string {
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'standin', cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.tls.cert).toString('base64') } }],
      users: [{ name: 'standin', user: { token: this.token } }],
      contexts: [{ name: 'standin', context: { cluster: 'standin', user: 'standin', namespace: this.namespace } }],
      'current-context': 'standin',
    }));
    return file;
  }

  objects(kind: Kind): Obj[] {
    return [...this.store.entries()].filter(([k]) => k.startsWith(`${kind}/`)).map(([, v]) => v);
  }

  /** Docker's name for a pod's container, and for a claim's volume. */
  containerOf(namespace: string, pod: string): string {
    return `${this.id}-${namespace}-${pod}`;
  }
  volumeOf(namespace: string, claim: string): string {
    return `${this.id}-pvc-${namespace}-${claim}`;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const c of this.wss.clients) c.terminate();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    await this.kubelet.cleanUp();
  }

  // ---- HTTP ------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.headers.authorization !== `Bearer ${this.token}`) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      const url = new URL(req.url ?? '/', this.url);
      const route = this.route(req.method ?? 'GET', url, req.headers);
      const text = await new Promise<string>((resolve) => {
        let s = '';
        req.on('data', (d: Buffer) => (s += d));
        req.on('end', () => resolve(s));
      });
      const body = text ? (JSON.parse(text) as Obj) : undefined;
      this.violate(route.operationId, this.spec.checkBody(route, body, text !== ''));
      if (route.operationId === 'readCoreV1NamespacedPodLog') return await this.podLog(route, url, res);
      const [code, answer] = await this.operate(route, url.searchParams, body);
      this.violate(route.operationId, this.spec.checkResponse(route, code, answer, true));
      send(res, code, answer);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', (e as Error).message);
      if (err.code === 500) this.violations.push(`stand-in: ${err.message}`);
      send(res, err.code, statusBody(err.code, err.reason, err.message));
    }
  }

  /** The operation a request is; one the spec does not have, or with parameters it does not take, is a 404. */
  private route(method: string, url: URL, headers: IncomingMessage['headers']): MatchedOperation {
    const m = this.spec.match(method, url.pathname);
    const problems = m ? this.spec.checkParameters(m, url.searchParams, headers).map((p) => `${m.operationId}: ${p}`) : [`${method} ${url.pathname}: no such operation in the Kubernetes API`];
    if (!m || problems.length) {
      this.violations.push(...problems);
      throw new ApiError(404, 'NotFound', problems.join('; '));
    }
    this.calls.push(`${method} ${m.operationId}`);
    return m;
  }

  private violate(op: string, problems: string[]): void {
    for (const p of problems) this.violations.push(`${op}: ${p}`);
  }

  private async operate(route: MatchedOperation, query: URLSearchParams, body: Obj | undefined): Promise<[number, Obj]> {
    const { namespace = '', name = '' } = route.params;
    const op = route.operationId;
    if (op === 'getCodeVersion') {
      return [200, { major: '1', minor: '34', gitVersion: 'v1.34.0-k8sstandin', gitCommit: 'standin', gitTreeState: 'clean', buildDate: new Date(0).toISOString(), goVersion: 'none', compiler: 'none', platform: 'linux/amd64' }];
    }
    if (namespace && !this.namespaces.has(namespace)) throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`);
    const kind = (/Namespaced(Secret|PersistentVolumeClaim|Pod|StatefulSet)(Scale)?$/.exec(op) ?? [])[1];
    const plural = ({ Secret: 'secrets', PersistentVolumeClaim: 'persistentvolumeclaims', Pod: 'pods', StatefulSet: 'statefulsets' } as const)[kind as 'Pod'];
    if (!plural) throw new ApiError(405, 'MethodNotAllowed', `the stand-in does not serve ${op}`);
    const key = `${plural}/${namespace}/${name}`;
    const verb = /^(create|read|replace|delete)/.exec(op)?.[1];
    if (op.endsWith('Scale')) return this.scale(key, verb, body);
    switch (verb) {
      case 'create': {
        const obj = this.admit(plural, namespace, body!);
        const k = `${plural}/${namespace}/${obj.metadata.name}`;
        if (this.store.has(k)) throw new ApiError(409, 'AlreadyExists', `${plural} "${obj.metadata.name}" already exists`);
        this.store.set(k, obj);
        return [201, obj];
      }
      case 'read':
        return [200, this.get(key, plural, name)];
      case 'replace': {
        const old = this.get(key, plural, name);
        const obj = this.admit(plural, namespace, body!, old);
        this.store.set(key, obj);
        return [200, obj];
      }
      case 'delete':
        return this.remove(key, plural, name, query);
      default:
        throw new ApiError(405, 'MethodNotAllowed', `the stand-in does not serve ${op}`);
    }
  }

  private get(key: string, plural: string, name: string): Obj {
    const o = this.store.get(key);
    if (!o) throw new ApiError(404, 'NotFound', `${plural} "${name}" not found`);
    return o;
  }

  /** What the API server does to an object it accepts: metadata, defaults, and stringData folded into data. */
  private admit(plural: Kind, namespace: string, body: Obj, old?: Obj): Obj {
    const obj = structuredClone(body);
    if (obj.metadata?.namespace && obj.metadata.namespace !== namespace) throw new ApiError(400, 'BadRequest', 'the namespace of the object does not match the namespace of the request');
    if (!obj.metadata?.name) throw new ApiError(422, 'Invalid', 'metadata.name: Required value');
    obj.metadata = { ...obj.metadata, namespace, uid: old?.metadata.uid ?? randomUUID(), resourceVersion: String(this.rv++), creationTimestamp: old?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    obj.apiVersion = KINDS[plural].apiVersion;
    obj.kind = KINDS[plural].kind;
    if (plural === 'secrets' && obj.stringData) {
      obj.data = { ...obj.data, ...Object.fromEntries(Object.entries(obj.stringData as Record<string, string>).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
      delete obj.stringData;
    }
    if (plural === 'persistentvolumeclaims') {
      obj.spec.storageClassName ??= 'standard';
      obj.spec.volumeName = `pvc-${obj.metadata.uid}`;
      obj.status = { phase: 'Bound', accessModes: obj.spec.accessModes, capacity: { storage: obj.spec.resources?.requests?.storage } };
    }
    if (plural === 'statefulsets') {
      obj.metadata.generation = (old?.metadata.generation ?? 0) + 1;
      obj.spec.replicas ??= 1;
      obj.status = old?.status ?? { replicas: 0 };
    }
    return obj;
  }

  private scale(key: string, verb: string | undefined, body: Obj | undefined): [number, Obj] {
    const set = this.get(key, 'statefulsets', key.split('/')[2]!);
    if (verb === 'replace') {
      set.spec.replicas = body?.spec?.replicas ?? 0;
      set.metadata.generation += 1;
      set.metadata.resourceVersion = String(this.rv++);
    }
    const { name, namespace, uid, resourceVersion, creationTimestamp } = set.metadata;
    return [200, {
      apiVersion: 'autoscaling/v1', kind: 'Scale',
      metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
      spec: { replicas: set.spec.replicas },
      status: { replicas: set.status.replicas ?? 0, selector: Object.entries(set.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',') },
    }];
  }

  private remove(key: string, plural: Kind, name: string, query: URLSearchParams): [number, Obj] {
    const obj = this.get(key, plural, name);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (plural === 'pods') {
      const grace = Number(query.get('gracePeriodSeconds') ?? obj.spec.terminationGracePeriodSeconds ?? 30);
      if (!obj.metadata.deletionTimestamp || grace < obj.metadata.deletionGracePeriodSeconds) this.terminate(key, obj, grace);
      return [200, obj];
    }
    if (plural === 'persistentvolumeclaims') {
      // kubernetes.io/pvc-protection: a claim a pod still uses goes once that pod is gone.
      obj.metadata.deletionTimestamp ??= now;
      void this.releaseClaims();
      return [200, obj];
    }
    this.store.delete(key);
    // The garbage collector takes a deleted stateful set's pods (background propagation).
    if (plural === 'statefulsets') for (const [k, pod] of this.store) if (k.startsWith('pods/') && pod.metadata.ownerReferences?.[0]?.uid === obj.metadata.uid) this.terminate(k, pod, pod.spec.terminationGracePeriodSeconds ?? 30);
    return [200, statusBody(200, '', '', { name, kind: plural })];
  }

  private async podLog(route: MatchedOperation, url: URL, res: ServerResponse): Promise<void> {
    const { namespace = '', name = '' } = route.params;
    const pod = this.get(`pods/${namespace}/${name}`, 'pods', name);
    if (pod.status.phase !== 'Running') throw new ApiError(400, 'BadRequest', `container "workspace" in pod "${name}" is waiting to start`);
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    const tail = url.searchParams.get('tailLines');
    await this.kubelet.logs(this.containerOf(namespace, name), url.searchParams.get('follow') === 'true', tail ? Number(tail) : undefined, res);
    res.end();
  }

  // ---- exec ------------------------------------------------------------------------------------------------

  private async upgrade(req: IncomingMessage, socket: import('node:net').Socket, head: Buffer): Promise<void> {
    const refuse = (code: number, message: string) => {
      socket.end(`HTTP/1.1 ${code} ${code === 404 ? 'Not Found' : 'Bad Request'}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(statusBody(code, code === 404 ? 'NotFound' : 'BadRequest', message))}`);
    };
    try {
      if (req.headers.authorization !== `Bearer ${this.token}`) return refuse(401, 'Unauthorized');
      const url = new URL(req.url ?? '/', this.url);
      const route = this.route(req.method ?? 'GET', url, req.headers);
      if (!/^connectCoreV1(Get|Post)NamespacedPodExec$/.test(route.operationId)) return refuse(400, `${route.operationId} is not a streaming operation`);
      const { namespace = '', name = '' } = route.params;
      const q = url.searchParams;
      const pod = this.store.get(`pods/${namespace}/${name}`);
      if (!pod) return refuse(404, `pods "${name}" not found`);
      const container = q.get('container') ?? pod.spec.containers[0].name;
      if (!pod.spec.containers.some((c: Obj) => c.name === container)) return refuse(400, `container ${container} is not valid for pod ${name}`);
      if (pod.status.phase !== 'Running' || pod.metadata.deletionTimestamp) return refuse(400, `unable to upgrade connection: container not found ("${container}")`);
      const command = q.getAll('command');
      if (!command.length) return refuse(400, 'you must specify at least 1 command');
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const opts = { command, stdin: q.get('stdin') === 'true', tty: q.get('tty') === 'true', v5: ws.protocol === 'v5.channel.k8s.io' };
        void this.kubelet.exec(this.containerOf(namespace, name), ws, opts, (code) => this.exitStatus(code, command)).catch((e) => {
          this.violations.push(`stand-in exec: ${(e as Error).message}`);
          ws.close(1011);
        });
      });
    } catch (e) {
      refuse(e instanceof ApiError ? e.code : 500, (e as Error).message);
    }
  }

  /** The v1 Status a kubelet sends on channel 3, checked against the spec like every other answer. */
  private exitStatus(code: number, command: string[]): Obj {
    const s = code === 0
      ? { metadata: {}, status: 'Success' }
      : { metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`, reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code) }] } };
    this.violate('exec', this.spec.checkSchema(s, { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status' }, 'status'));
    return s;
  }

  // ---- controllers -----------------------------------------------------------------------------------------

  private reconciling = false;

  private async reconcile(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      for (const set of this.objects('statefulsets')) await this.reconcileSet(set);
      for (const [key, pod] of [...this.store].filter(([k]) => k.startsWith('pods/'))) await this.refreshPod(key, pod);
    } finally {
      this.reconciling = false;
    }
  }

  private async reconcileSet(set: Obj): Promise<void> {
    const { namespace, name } = set.metadata;
    const podKey = `pods/${namespace}/${name}-0`;
    const pod = this.store.get(podKey);
    if (set.spec.replicas >= 1 && !pod) this.store.set(podKey, this.podFor(set));
    if (set.spec.replicas === 0 && pod && !pod.metadata.deletionTimestamp) this.terminate(podKey, pod, pod.spec.terminationGracePeriodSeconds ?? 30);
    const running = pod && !pod.metadata.deletionTimestamp && pod.status.phase === 'Running' ? 1 : 0;
    set.status = { replicas: pod ? 1 : 0, readyReplicas: running, availableReplicas: running, currentReplicas: pod ? 1 : 0, updatedReplicas: pod ? 1 : 0, observedGeneration: set.metadata.generation };
  }

  private podFor(set: Obj): Obj {
    const { namespace, name } = set.metadata;
    const template = structuredClone(set.spec.template);
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...template.metadata,
        name: `${name}-0`,
        namespace,
        uid: randomUUID(),
        resourceVersion: String(this.rv++),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        labels: { ...template.metadata?.labels, 'statefulset.kubernetes.io/pod-name': `${name}-0` },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name, uid: set.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...template.spec, hostname: `${name}-0`, nodeName: NODE_NAME, restartPolicy: 'Always' },
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
    };
  }

  /** The kubelet's view: start a scheduled pod's container, and report what its container does. */
  private async refreshPod(key: string, pod: Obj): Promise<void> {
    if (pod.metadata.deletionTimestamp) return;
    const [, namespace, name] = key.split('/') as [string, string, string];
    const container = this.containerOf(namespace, name);
    const c = pod.spec.containers[0];
    const base = { name: c.name, image: c.image, imageID: '', restartCount: 0, ready: false };
    if (pod.status.phase === 'Pending' && !pod.starting) {
      const run = await this.resolve(pod).catch((e: Error) => e);
      if (run instanceof Error) {
        pod.status.containerStatuses = [{ ...base, state: { waiting: { reason: 'CreateContainerConfigError', message: run.message } } }];
        return;
      }
      if (!(await this.kubelet.imageExists(c.image))) {
        pod.status.containerStatuses = [{ ...base, state: { waiting: { reason: 'ErrImagePull', message: `image ${c.image} is not on the stand-in's Docker engine` } } }];
        return;
      }
      pod.status.containerStatuses = [{ ...base, state: { waiting: { reason: 'ContainerCreating' } } }];
      Object.defineProperty(pod, 'starting', { value: true, enumerable: false, writable: true });
      await this.kubelet.run(container, run);
    }
    const state = await this.kubelet.state(container);
    if (state.kind === 'running') {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      pod.status = {
        phase: 'Running', hostIP: '127.0.0.1', podIP: '127.0.0.1', startTime: pod.status.startTime ?? now,
        conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True' })),
        containerStatuses: [{ ...base, ready: true, started: true, state: { running: { startedAt: state.startedAt.replace(/\.\d+Z$/, 'Z') } } }],
      };
    } else if (state.kind === 'exited') {
      pod.status.containerStatuses = [{ ...base, state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.name}` } }, lastState: { terminated: { exitCode: state.exitCode, reason: state.reason } } }];
      pod.status.conditions = [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False' }];
    }
  }

  /** Secrets into environment, claims into volumes, the security context into a user: the pod as Docker needs it. */
  private async resolve(pod: Obj): Promise<PodRun> {
    const ns = pod.metadata.namespace;
    const c = pod.spec.containers[0];
    const env: string[] = [];
    for (const from of c.envFrom ?? []) {
      const secret = this.store.get(`secrets/${ns}/${from.secretRef?.name}`);
      if (!secret) throw new Error(`secret "${from.secretRef?.name}" not found`);
      for (const [k, v] of Object.entries(secret.data ?? {})) env.push(`${k}=${Buffer.from(v as string, 'base64').toString('utf8')}`);
    }
    for (const e of c.env ?? []) env.push(`${e.name}=${e.value ?? ''}`);
    const mounts = (c.volumeMounts ?? []).map((m: Obj) => {
      const volume = (pod.spec.volumes ?? []).find((v: Obj) => v.name === m.name);
      const claim = volume?.persistentVolumeClaim?.claimName;
      if (!claim || !this.store.has(`persistentvolumeclaims/${ns}/${claim}`)) throw new Error(`persistentvolumeclaim "${claim}" not found`);
      return { volume: this.volumeOf(ns, claim), target: m.mountPath };
    });
    const sc = { ...pod.spec.securityContext, ...c.securityContext };
    const limits = c.resources?.limits ?? {};
    return {
      container: c.name,
      image: c.image,
      env,
      mounts,
      ...(sc.runAsUser !== undefined ? { user: `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` } : {}),
      ...(c.workingDir ? { workingDir: c.workingDir } : {}),
      ...(c.command ? { command: c.command } : {}),
      ...(c.args ? { args: c.args } : {}),
      ...(limits.memory ? { memoryBytes: quantity(limits.memory) } : {}),
      ...(limits.cpu ? { cpus: quantity(limits.cpu) } : {}),
    };
  }

  private terminate(key: string, pod: Obj, grace: number): void {
    pod.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    pod.metadata.deletionGracePeriodSeconds = grace;
    const [, namespace, name] = key.split('/') as [string, string, string];
    void this.kubelet.kill(this.containerOf(namespace, name), grace).then(() => {
      if (this.store.get(key) === pod) this.store.delete(key);
      return this.releaseClaims();
    });
  }

  /** Claims marked for deletion go once no pod mounts them, with their volume. */
  private async releaseClaims(): Promise<void> {
    for (const [key, claim] of [...this.store].filter(([k, c]) => k.startsWith('persistentvolumeclaims/') && c.metadata.deletionTimestamp)) {
      const { namespace, name } = claim.metadata;
      const used = this.objects('pods').some((p) => p.metadata.namespace === namespace && (p.spec.volumes ?? []).some((v: Obj) => v.persistentVolumeClaim?.claimName === name));
      if (used) continue;
      this.store.delete(key);
      await this.kubelet.removeVolume(this.volumeOf(namespace, name));
    }
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function statusBody(code: number, reason: string, message: string, details?: Obj): Obj {
  return code < 300
    ? { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', ...(details ? { details } : {}) }
    : { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** Kubernetes quantities as numbers: "2" CPUs, "4096Mi" bytes, "500m" CPU. */
function quantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) return 0;
  const unit = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}
