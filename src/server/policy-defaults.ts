/** @module Policy defaults (seed 000), in a module of their own so the CLI's help needs none of the server. */
export const DEFAULT_POLICY = { maxRunning: 10, launchesPerHour: 5, idleStopSeconds: null, autoDeleteSeconds: null, intervalMs: 30_000 } as const;
