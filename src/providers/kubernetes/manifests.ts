/**
 * @module The three objects a Kubernetes workspace is made of, as plain API bodies: a Secret with its environment,
 * a PersistentVolumeClaim for /workspace, and a StatefulSet of at most one Pod that mounts both. Pure functions,
 * so what claude-vm asks a cluster for can be read in one place.
 */
import type { SizeSpec, WorkspaceSpec } from '../provider.js';

export const ROOT = '/workspace';
export const CONTAINER = 'workspace';
/** UID/GID of the workspace user in the claude-vm image (see image/Dockerfile). */
const WORKSPACE_UID = 1000;

export interface Placement {
  namespace: string;
  storageClass?: string;
  storageSize: string;
}

/** Every object of a workspace has this name; its one pod is `<name>-0` (a StatefulSet's first ordinal). */
export function resourceName(workspaceId: string): string {
  return `claude-vm-${workspaceId}`;
}

export function podName(name: string): string {
  return `${name}-0`;
}

/**
 * Label values must be at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric; a project
 * name may be anything, so values are squeezed into that and kept whole in annotations.
 */
function labelsOf(spec: WorkspaceSpec): { labels: Record<string, string>; annotations: Record<string, string> } {
  const labels: Record<string, string> = { 'app.kubernetes.io/managed-by': 'claude-vm' };
  for (const [k, v] of Object.entries(spec.labels)) {
    labels[k] = v.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  }
  return { labels, annotations: { ...spec.labels } };
}

/** The workspace's environment (it may carry API keys) lives here and reaches the pod through envFrom, never the pod spec. */
export function secretManifest(spec: WorkspaceSpec, p: Placement) {
  const name = resourceName(spec.id);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: p.namespace, ...labelsOf(spec) },
    type: 'Opaque',
    stringData: { ...spec.env },
  };
}

export function claimManifest(spec: WorkspaceSpec, p: Placement) {
  const name = resourceName(spec.id);
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: p.namespace, ...labelsOf(spec) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: p.storageSize } },
      ...(p.storageClass ? { storageClassName: p.storageClass } : {}),
    },
  };
}

/**
 * A StatefulSet rather than a Deployment: it never runs two pods of one ordinal at once (a Deployment's rolling
 * update would start a second pod on the same ReadWriteOnce claim), and its pod has a stable name to exec into.
 * Created with no replicas; `start` scales it to one and `stop` back to zero, which keeps the claim.
 */
export function statefulSetManifest(spec: WorkspaceSpec, p: Placement, size: SizeSpec) {
  const name = resourceName(spec.id);
  const { labels, annotations } = labelsOf(spec);
  const selector = { 'dev.claude-vm.workspace': labels['dev.claude-vm.workspace'] ?? spec.id };
  const resources = { cpu: String(size.cpus), memory: `${size.memoryMb}Mi` };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: p.namespace, labels, annotations },
    spec: {
      replicas: 0,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...labels, ...selector }, annotations },
        spec: {
          // Agents run with full permissions inside; they get no credentials for the cluster around them.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 10,
          securityContext: {
            runAsUser: WORKSPACE_UID,
            runAsGroup: WORKSPACE_UID,
            runAsNonRoot: true,
            // A fresh volume is root-owned on most storage; this makes it the workspace user's.
            fsGroup: WORKSPACE_UID,
            fsGroupChangePolicy: 'OnRootMismatch',
          },
          containers: [
            {
              name: CONTAINER,
              image: spec.image,
              imagePullPolicy: 'IfNotPresent',
              workingDir: ROOT,
              envFrom: [{ secretRef: { name } }],
              volumeMounts: [{ name: 'workspace', mountPath: ROOT }],
              resources: { requests: resources, limits: resources },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
          volumes: [{ name: 'workspace', persistentVolumeClaim: { claimName: name } }],
        },
      },
    },
  };
}
