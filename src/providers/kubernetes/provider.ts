/**
 * @module Kubernetes provider: per workspace a Secret (its environment), a PersistentVolumeClaim (/workspace) and a
 * StatefulSet whose one Pod runs the workspace; `down` scales it to zero and keeps the claim. Everything goes
 * through @kubernetes/client-node, loaded on first use: it takes about a second to import, and every CLI command
 * loads the provider registry.
 */
import { PassThrough } from 'node:stream';
import type * as K8s from '@kubernetes/client-node';
import { UserError, errorMessage } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import type { ControlPlaneEndpoints, ExecHandle, ExecOptions, LogOptions, Provider, ResourceRefs, RuntimeStatus, SizeSpec, WorkspaceSpec } from '../provider.js';
import { IS_READY } from '../docker/bootstrap.js';
import { CONTAINER, ROOT, claimManifest, podName, resourceName, secretManifest, statefulSetManifest, type Placement } from './manifests.js';

/** How long a pod gets to be scheduled, pull its image and start. */
const START_TIMEOUT_MS = 5 * 60_000;
/** How long `down` and `delete` wait for the pod to go (its grace period is 10 s). */
const STOP_TIMEOUT_MS = 90_000;

interface Clients {
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  apps: K8s.AppsV1Api;
  lib: typeof K8s;
}

export class KubernetesProvider implements Provider {
  readonly type = 'kubernetes';
  readonly isolates = true;
  private clients?: Promise<Clients>;

  constructor(
    private readonly options: Record<string, string>,
    private readonly sizes: Record<string, SizeSpec>,
  ) {}

  workspaceRoot = (): string => ROOT;

  private get placement(): Placement {
    return {
      namespace: this.options.namespace || 'default',
      storageSize: this.options['storage-size'] || '10Gi',
      ...(this.options['storage-class'] ? { storageClass: this.options['storage-class'] } : {}),
    };
  }

  private api(): Promise<Clients> {
    this.clients ??= (async () => {
      const lib = await import('@kubernetes/client-node');
      const kc = new lib.KubeConfig();
      try {
        if (this.options.kubeconfig) kc.loadFromFile(this.options.kubeconfig);
        else kc.loadFromDefault();
        if (this.options.context) kc.setCurrentContext(this.options.context);
      } catch (e) {
        throw new UserError('invalid_argument', `Cannot load the kubeconfig: ${errorMessage(e)}.`, 'Point --option kubeconfig=FILE at a working one (`kubectl config view`).', { cause: e });
      }
      if (!kc.getCurrentCluster()) {
        throw new UserError('invalid_argument', `The kubeconfig has no cluster${this.options.context ? ` for context "${this.options.context}"` : ''}.`, 'See `kubectl config get-contexts`, then --option context=NAME.');
      }
      return { kc, lib, core: kc.makeApiClient(lib.CoreV1Api), apps: kc.makeApiClient(lib.AppsV1Api) };
    })();
    this.clients.catch(() => (this.clients = undefined));
    return this.clients;
  }

  private get where(): string {
    return this.options.context ? `context ${this.options.context}` : 'the current kubeconfig context';
  }

  async check(_spec?: Pick<WorkspaceSpec, 'image'>, progress?: ProgressFn): Promise<void> {
    const { kc, lib } = await this.api();
    progress?.({ step: 'Reaching the Kubernetes API', detail: kc.getCurrentCluster()?.server });
    try {
      await kc.makeApiClient(lib.VersionApi).getCode();
    } catch (e) {
      throw new UserError('provider_unavailable', `Cannot reach the Kubernetes API server of ${this.where} (${apiMessage(e)}).`, 'Check `kubectl version` with the same kubeconfig and context.', { cause: e });
    }
  }

  async create(spec: WorkspaceSpec, progress?: ProgressFn): Promise<ResourceRefs> {
    const { core, apps } = await this.api();
    const p = this.placement;
    const size = this.sizes[spec.size ?? 'medium'];
    if (!size) throw new UserError('invalid_argument', `Unknown size "${spec.size}".`, `Kubernetes sizes: ${Object.keys(this.sizes).join(', ')}.`);
    const name = resourceName(spec.id);
    const ns = p.namespace;
    const made: Array<() => Promise<unknown>> = [];
    try {
      progress?.({ step: 'Creating secret', detail: `${ns}/${name}` });
      const secret = secretManifest(spec, p);
      // Left over from an interrupted delete: its content is replaced, never trusted.
      await core.createNamespacedSecret({ namespace: ns, body: secret }).catch((e) => (codeOf(e) === 409 ? core.replaceNamespacedSecret({ name, namespace: ns, body: secret }) : Promise.reject(e)));
      made.push(() => core.deleteNamespacedSecret({ name, namespace: ns }));

      // A claim that already exists holds this workspace's data (resume after `delete`): reuse it, never remove it.
      const existed = await core.readNamespacedPersistentVolumeClaim({ name, namespace: ns }).then(() => true, (e) => (codeOf(e) === 404 ? false : Promise.reject(e)));
      if (!existed) {
        progress?.({ step: 'Creating volume claim', detail: `${name} (${p.storageSize}${p.storageClass ? `, class ${p.storageClass}` : ''})` });
        await core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claimManifest(spec, p) });
        made.push(() => core.deleteNamespacedPersistentVolumeClaim({ name, namespace: ns }));
      }

      progress?.({ step: 'Creating stateful set', detail: name });
      await apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSetManifest(spec, p, size) });
      made.push(() => apps.deleteNamespacedStatefulSet({ name, namespace: ns }));
    } catch (e) {
      for (const undo of made.reverse()) await undo().catch(() => undefined);
      throw new UserError('provider_unavailable', `Kubernetes could not create the workspace in namespace ${ns}: ${apiMessage(e)}.`, hintFor(e, ns), { cause: e });
    }
    const ref = `${ns}/${name}`;
    return { statefulSet: ref, pvc: ref, secret: ref, pod: `${ns}/${podName(name)}` };
  }

  async start(refs: ResourceRefs, progress?: ProgressFn): Promise<void> {
    const { apps } = await this.api();
    const [namespace, name] = split(refs, 'statefulSet');
    progress?.({ step: 'Starting pod', detail: podName(name) });
    try {
      await apps.replaceNamespacedStatefulSetScale({ name, namespace, body: { metadata: { name, namespace }, spec: { replicas: 1 } } });
    } catch (e) {
      if (codeOf(e) === 404) throw gone(refs);
      throw new UserError('provider_unavailable', `Kubernetes could not start the workspace: ${apiMessage(e)}.`, undefined, { cause: e });
    }
    await this.waitRunning(refs, progress);
    progress?.({ step: 'Waiting for the workspace to be ready' });
    await this.waitReady(refs);
  }

  /** Follows the pod from scheduling to running, saying what it waits for; a pod that cannot start fails at once. */
  private async waitRunning(refs: ResourceRefs, progress?: ProgressFn): Promise<void> {
    const { core } = await this.api();
    const [namespace, name] = split(refs, 'pod');
    const deadline = Date.now() + START_TIMEOUT_MS;
    let said = '';
    let why = 'the pod was not created';
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const pod = await core.readNamespacedPod({ name, namespace }).catch((e) => (codeOf(e) === 404 ? undefined : Promise.reject(e)));
      // A pod being deleted is the previous run's, still shutting down: the stateful set recreates it after.
      if (pod && !pod.metadata?.deletionTimestamp) {
        const s = podState(pod);
        if (s.kind === 'running') return;
        if (s.kind === 'failed') throw new UserError('provider_unavailable', `The workspace pod cannot start: ${s.detail}.`, `See \`kubectl -n ${namespace} describe pod ${name}\`.`);
        why = s.detail;
        if (s.detail !== said) progress?.({ step: s.step, detail: (said = s.detail) });
      }
      if (Date.now() > deadline) {
        throw new UserError('provider_unavailable', `The workspace pod did not start within ${START_TIMEOUT_MS / 60_000} minutes: ${why}.`, `See \`kubectl -n ${namespace} describe pod ${name}\`.`);
      }
      await sleep(delay);
    }
  }

  /** The image's entrypoint marks the workspace usable (user state linked); the first exec must not race it. */
  private async waitReady(refs: ResourceRefs): Promise<void> {
    const deadline = Date.now() + 60_000;
    const wait = `i=0; until ${IS_READY}; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.01; done`;
    for (;;) {
      const sink = new PassThrough().resume();
      const code = await this.exec(refs, { argv: ['sh', '-c', wait], stdout: sink, stderr: sink }).then((h) => h.exit);
      if (code === 0) return;
      if (Date.now() > deadline) {
        throw new UserError('provider_unavailable', 'The workspace did not become ready within 60 s.', 'Kubernetes workspaces need the claude-vm image (or one built from it); see `claude-vm workspace logs <id>`.');
      }
    }
  }

  async stop(refs: ResourceRefs, opts?: { force?: boolean }): Promise<void> {
    const { apps, core } = await this.api();
    const [namespace, name] = split(refs, 'statefulSet');
    try {
      await apps.replaceNamespacedStatefulSetScale({ name, namespace, body: { metadata: { name, namespace }, spec: { replicas: 0 } } });
    } catch (e) {
      // Nothing left to stop.
      if (codeOf(e) === 404) return;
      throw new UserError('provider_unavailable', `Kubernetes could not stop the workspace: ${apiMessage(e)}.`, undefined, { cause: e });
    }
    const [podNs, pod] = split(refs, 'pod');
    if (opts?.force) await core.deleteNamespacedPod({ name: pod, namespace: podNs, gracePeriodSeconds: 0 }).catch(ignore404);
    await this.waitPodGone(refs);
  }

  /** `down` returns once the pod is gone, so a following `up` or purge never meets the old one. */
  private async waitPodGone(refs: ResourceRefs): Promise<void> {
    const { core } = await this.api();
    const [namespace, name] = split(refs, 'pod');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const there = await core.readNamespacedPod({ name, namespace }).then(() => true, (e) => (codeOf(e) === 404 ? false : Promise.reject(e)));
      if (!there) return;
      if (Date.now() > deadline) throw new UserError('provider_unavailable', `The workspace pod ${name} is still shutting down after ${STOP_TIMEOUT_MS / 1000} s.`, `See \`kubectl -n ${namespace} describe pod ${name}\`.`);
      await sleep(delay);
    }
  }

  async delete(refs: ResourceRefs, opts: { purge: boolean }): Promise<void> {
    const { apps, core } = await this.api();
    if (refs.statefulSet) {
      const [namespace, name] = split(refs, 'statefulSet');
      await apps.deleteNamespacedStatefulSet({ name, namespace }).catch(ignore404);
      if (refs.pod) {
        // The garbage collector removes the pod after its stateful set; this does it now, and waits for it.
        const [podNs, pod] = split(refs, 'pod');
        await core.deleteNamespacedPod({ name: pod, namespace: podNs }).catch(ignore404);
        await this.waitPodGone(refs);
      }
    }
    if (refs.secret) {
      const [namespace, name] = split(refs, 'secret');
      await core.deleteNamespacedSecret({ name, namespace }).catch(ignore404);
    }
    if (opts.purge && refs.pvc) {
      const [namespace, name] = split(refs, 'pvc');
      await core.deleteNamespacedPersistentVolumeClaim({ name, namespace }).catch(ignore404);
    }
  }

  async status(refs: ResourceRefs): Promise<RuntimeStatus> {
    if (!refs.statefulSet) return { state: 'missing', detail: 'no stateful set was recorded' };
    try {
      const { apps, core } = await this.api();
      const [namespace, name] = split(refs, 'statefulSet');
      const set = await apps.readNamespacedStatefulSet({ name, namespace }).catch((e) => (codeOf(e) === 404 ? undefined : Promise.reject(e)));
      if (!set) return { state: 'missing', detail: 'the stateful set no longer exists' };
      if (!set.spec?.replicas) return { state: 'stopped' };
      const [podNs, pod] = split(refs, 'pod');
      const p = await core.readNamespacedPod({ name: pod, namespace: podNs }).catch((e) => (codeOf(e) === 404 ? undefined : Promise.reject(e)));
      if (!p) return { state: 'error', detail: 'the pod is not there yet (the stateful set is recreating it)' };
      const s = podState(p);
      return s.kind === 'running' ? { state: 'running' } : { state: 'error', detail: `the pod is not running: ${s.detail}` };
    } catch (e) {
      if (e instanceof UserError) return { state: 'error', detail: e.message };
      return { state: 'error', detail: `the Kubernetes API server did not answer: ${apiMessage(e)}` };
    }
  }

  async exec(refs: ResourceRefs, opts: ExecOptions): Promise<ExecHandle> {
    const { kc } = await this.api();
    const [namespace, name] = split(refs, 'pod');
    // The exec API has no working directory or environment: a shell sets them, then becomes the command.
    // (Only settings pass this way, such as TERM; secrets reach a workspace through its Secret.)
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const command = ['/bin/sh', '-c', 'cd "$0" || exit 126; exec env "$@"', opts.cwd ?? ROOT, ...env, ...opts.argv];
    const query = new URLSearchParams({ container: CONTAINER, stdout: 'true', stderr: String(!opts.tty), stdin: String(!!opts.stdin), tty: String(!!opts.tty) });
    for (const c of command) query.append('command', c);
    const server = kc.getCurrentCluster()!.server.replace(/^http/, 'ws').replace(/\/$/, '');
    const wsOptions: Record<string, unknown> = {};
    await kc.applyToHTTPSOptions(wsOptions);
    const { channelExec } = await import('./exec.js');
    return channelExec({
      url: `${server}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/exec?${query}`,
      options: wsOptions,
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
      ...(opts.tty ? { tty: opts.tty } : {}),
      stdout: opts.stdout,
      stderr: opts.stderr ?? opts.stdout,
    });
  }

  async logs(refs: ResourceRefs, opts: LogOptions): Promise<void> {
    const { kc, lib } = await this.api();
    const [namespace, name] = split(refs, 'pod');
    // The library ends the stream it writes to; the caller's must stay open.
    const out = new PassThrough();
    out.pipe(opts.stdout, { end: false });
    const done = new Promise((resolve, reject) => out.once('end', resolve).once('error', reject));
    try {
      await new lib.Log(kc).log(namespace, name, CONTAINER, out, { follow: !!opts.follow, ...(opts.tail !== undefined ? { tailLines: opts.tail } : {}) });
    } catch (e) {
      if (codeOf(e) === 404 || codeOf(e) === 400) throw new UserError('wrong_state', 'The workspace pod is not running, so it has no logs.', 'Start it with `claude-vm workspace up <id>`.');
      throw e;
    }
    await done;
  }

  tunnelUrl(_refs: ResourceRefs, cp: ControlPlaneEndpoints): string {
    const url = this.options['control-plane-url'] || cp.publicUrl;
    if (!url) {
      throw new UserError(
        'invalid_argument',
        'Kubernetes workspaces need a URL to reach the control plane, and none is set.',
        'Start the server with `claude-vm server --public-url https://…`, or `claude-vm provider set-options <name> --option control-plane-url=…`.',
      );
    }
    return url;
  }
}

interface PodState {
  kind: 'running' | 'waiting' | 'failed';
  step: string;
  detail: string;
}

/** Reasons a container waits that will not pass by waiting longer. */
const HOPELESS = /^(ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull|CreateContainerConfigError|CreateContainerError|CrashLoopBackOff|RunContainerError)$/;

function podState(pod: K8s.V1Pod): PodState {
  const c = pod.status?.containerStatuses?.find((s) => s.name === CONTAINER);
  if (pod.status?.phase === 'Running' && c?.state?.running) return { kind: 'running', step: 'Running', detail: 'running' };
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
    return { kind: 'failed', step: 'Pod ended', detail: `the pod ${pod.status.phase === 'Failed' ? 'failed' : 'exited'}${pod.status.message ? `: ${pod.status.message}` : ''}` };
  }
  const waiting = c?.state?.waiting;
  if (waiting?.reason && HOPELESS.test(waiting.reason)) return { kind: 'failed', step: 'Pod failed', detail: `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
  if (c?.state?.terminated) return { kind: 'failed', step: 'Pod failed', detail: `the workspace container exited with code ${c.state.terminated.exitCode}${c.state.terminated.reason ? ` (${c.state.terminated.reason})` : ''}` };
  const scheduled = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
  if (scheduled?.status !== 'True') {
    return { kind: 'waiting', step: 'Waiting for the pod to be scheduled', detail: scheduled?.message || 'no node chosen yet' };
  }
  if (waiting?.reason === 'ContainerCreating' || waiting?.reason === 'PodInitializing' || !c) {
    return { kind: 'waiting', step: 'Waiting for the pod to run', detail: `${pod.spec?.nodeName ? `on ${pod.spec.nodeName}: ` : ''}pulling the image and mounting the volume` };
  }
  return { kind: 'waiting', step: 'Waiting for the pod to run', detail: waiting?.reason ?? pod.status?.phase ?? 'pending' };
}

/** refs hold `namespace/name`, so they never equal another provider's bare names (a move compares them). */
function split(refs: ResourceRefs, key: string): [string, string] {
  const v = refs[key];
  const at = v?.indexOf('/') ?? -1;
  if (!v || at < 1) throw new UserError('wrong_state', `This workspace has no ${key} recorded.`, 'Run `claude-vm workspace up <id>` to recreate it.');
  return [v.slice(0, at), v.slice(at + 1)];
}

function gone(refs: ResourceRefs): UserError {
  return new UserError('wrong_state', `The workspace's stateful set ${refs.statefulSet} no longer exists.`, 'Run `claude-vm workspace up <id>` to recreate it around its volume claim.');
}

function codeOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function ignore404(e: unknown): void {
  if (codeOf(e) !== 404) throw e;
}

/** The API server's own sentence (its Status message) rather than the client library's dump of the exchange. */
function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown } | null)?.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() || errorMessage(e);
    }
  }
  const message = (parsed as { message?: unknown } | null)?.message;
  if (typeof message === 'string' && message) return message;
  const code = codeOf(e);
  return code ? `HTTP ${code}` : errorMessage(e).split('\n')[0]!;
}

function hintFor(e: unknown, namespace: string): string | undefined {
  if (codeOf(e) === 404) return `Does namespace ${namespace} exist? Create it, or set --option namespace=…`;
  if (codeOf(e) === 403) return `The kubeconfig's user needs to create secrets, persistentvolumeclaims and statefulsets in ${namespace}.`;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
