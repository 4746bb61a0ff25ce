/**
 * @module The Kubernetes provider type: its options, sizes and prices. The provider itself (provider.ts) loads the
 * Kubernetes client only when a command uses it.
 */
import { UserError } from '../../protocol/errors.js';
import type { ProviderFactory, SizeSpec } from '../provider.js';
import { scaledPrice } from '../docker/index.js';
import { KubernetesProvider } from './provider.js';

/** CPU and memory requests (and equal limits) of the workspace container. */
export const KUBERNETES_SIZES: Record<string, SizeSpec> = {
  small: { cpus: 1, memoryMb: 2048 },
  medium: { cpus: 2, memoryMb: 4096 },
  large: { cpus: 4, memoryMb: 8192 },
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A storage request such as 10Gi or 500M (Kubernetes' quantity syntax, whole or decimal). */
const QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

function validate(options: Record<string, string>): void {
  const bad = (what: string, hint: string) => {
    throw new UserError('invalid_argument', what, hint);
  };
  if (options.namespace && !DNS_LABEL.test(options.namespace)) bad(`"${options.namespace}" is not a Kubernetes namespace name.`, 'Use lower-case letters, digits and dashes (at most 63).');
  if (options['storage-class'] && !DNS_SUBDOMAIN.test(options['storage-class'])) bad(`"${options['storage-class']}" is not a storage class name.`, 'See `kubectl get storageclass`.');
  if (options['storage-size'] && !QUANTITY.test(options['storage-size'])) bad(`"${options['storage-size']}" is not a storage size.`, 'Write it as Kubernetes does, e.g. 10Gi or 500Mi.');
  const price = options['price-per-hour'];
  if (price !== undefined && price !== '' && !(Number.isFinite(Number(price)) && Number(price) >= 0)) bad(`The price per hour must be a number of dollars, not "${price}".`, 'e.g. --option price-per-hour=0.12');
  const url = options['control-plane-url'];
  if (url && !/^(https?|wss?):\/\/[^/\s]+/.test(url)) bad(`"${url}" is not a URL workspaces can dial.`, 'e.g. --option control-plane-url=https://cvm.example.com');
}

export const kubernetesProviderFactory: ProviderFactory = {
  type: 'kubernetes',
  description: 'Pods on a Kubernetes cluster: a StatefulSet, a PersistentVolumeClaim and a Secret per workspace',
  isolates: true,
  options: [
    { name: 'kubeconfig', description: 'kubeconfig file', default: '$KUBECONFIG, ~/.kube/config, or the in-cluster service account' },
    { name: 'context', description: 'kubeconfig context', default: 'its current context' },
    { name: 'namespace', description: 'namespace for workspaces (must exist)', default: 'default' },
    { name: 'storage-class', description: "storage class of the workspaces' volume claims", default: "the cluster's default class" },
    { name: 'storage-size', description: 'size of each workspace volume claim', default: '10Gi' },
    { name: 'control-plane-url', description: 'URL workspace pods dial to reach the control plane', default: "the server's --public-url (one of the two is needed)" },
    { name: 'price-per-hour', description: 'what an hour of a medium workspace costs you on this cluster (small ×0.5, large ×2), for cost accounting', default: '0' },
  ],
  sizes: KUBERNETES_SIZES,
  defaultSize: 'medium',
  pricePerHour: (size, options) => scaledPrice(size, options),
  validate,
  create: (options) => {
    validate(options);
    return new KubernetesProvider(options, KUBERNETES_SIZES);
  },
};
