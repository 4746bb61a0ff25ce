/**
 * @module Fly Machine sizes and what they cost. Fly bills a running Machine per second: a base price per CPU (which
 * includes 256 MB per shared CPU, 2 GB per performance CPU) plus a price per extra GB of memory. Figures are Fly's
 * published prices for its cheapest regions (fly.io/docs/about/pricing: shared-cpu-1x 256 MB $1.94, performance-1x
 * 2 GB $31.00, extra memory $5.00 per GB, each per 30 days); some regions cost more. `price-per-hour` overrides.
 */
import type { SizeSpec } from '../provider.js';

export interface FlySize extends SizeSpec {
  cpuKind: 'shared' | 'performance';
}

/** Sizes named after Fly's presets, with enough memory for an agent (Node plus a language server or two). */
export const FLY_SIZES: Record<string, FlySize> = {
  'shared-cpu-1x': { cpuKind: 'shared', cpus: 1, memoryMb: 1024 },
  'shared-cpu-2x': { cpuKind: 'shared', cpus: 2, memoryMb: 2048 },
  'shared-cpu-4x': { cpuKind: 'shared', cpus: 4, memoryMb: 4096 },
  'shared-cpu-8x': { cpuKind: 'shared', cpus: 8, memoryMb: 8192 },
  'performance-1x': { cpuKind: 'performance', cpus: 1, memoryMb: 2048 },
  'performance-2x': { cpuKind: 'performance', cpus: 2, memoryMb: 4096 },
  'performance-4x': { cpuKind: 'performance', cpus: 4, memoryMb: 8192 },
  'performance-8x': { cpuKind: 'performance', cpus: 8, memoryMb: 16384 },
};

export const DEFAULT_FLY_SIZE = 'shared-cpu-2x';

const SECONDS_PER_BILLING_MONTH = 30 * 24 * 3600;
/** US dollars per second, from the per-30-days list prices above. */
const PER_SECOND = {
  sharedCpu: 1.94 / SECONDS_PER_BILLING_MONTH,
  performanceCpu: 31.0 / SECONDS_PER_BILLING_MONTH,
  extraGb: 5.0 / SECONDS_PER_BILLING_MONTH,
};
/** Memory the CPU price already includes, per CPU. */
const INCLUDED_MB = { shared: 256, performance: 2048 };
/** Fly Volumes: $0.15 per provisioned GB per 30 days, running or not. */
export const VOLUME_PER_GB_MONTH = 0.15;

/** What a running Machine of this size costs per second, in US dollars. */
export function pricePerSecond(size: FlySize): number {
  const cpu = size.cpuKind === 'shared' ? PER_SECOND.sharedCpu : PER_SECOND.performanceCpu;
  const extraGb = Math.max(0, size.memoryMb - INCLUDED_MB[size.cpuKind] * size.cpus) / 1024;
  return size.cpus * cpu + extraGb * PER_SECOND.extraGb;
}

/** US dollars per running hour; the `price-per-hour` option (a negotiated or regional price) wins. */
export function flyPricePerHour(size: string, options: Record<string, string>): number {
  const override = Number(options['price-per-hour']);
  if (options['price-per-hour'] && Number.isFinite(override)) return override;
  const spec = FLY_SIZES[size];
  return spec ? pricePerSecond(spec) * 3600 : 0;
}
