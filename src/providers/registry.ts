/** @module The provider types this build knows. One folder per provider; add new ones here. */
import type { ProviderFactory } from './provider.js';
import { dockerProviderFactory } from './docker/index.js';
import { flyProviderFactory } from './fly/index.js';
import { kubernetesProviderFactory } from './kubernetes/index.js';
import { localProviderFactory } from './local/index.js';
import { sshProviderFactory } from './ssh/index.js';

export const PROVIDER_TYPES: Record<string, ProviderFactory> = {
  docker: dockerProviderFactory,
  fly: flyProviderFactory,
  kubernetes: kubernetesProviderFactory,
  local: localProviderFactory,
  ssh: sshProviderFactory,
};
