/** @module Keeps secrets out of events: any launch-env value (API keys, base URLs that may carry credentials). */

/** Env keys that are configuration, not credentials. */
const NOT_SECRET = /^(PATH|HOME|PWD|[A-Z_]*MODEL)$/;

/** The values worth hiding; very short ones would mangle ordinary text and protect nothing. */
export function secretValues(env: Record<string, string>): string[] {
  return Object.entries(env).filter(([k, v]) => v.length >= 8 && !NOT_SECRET.test(k)).map(([, v]) => v);
}

/** A copy of `data` with every occurrence of a secret, at any depth, replaced by `***`. */
export function scrubSecrets<T>(data: T, secrets: string[]): T {
  if (secrets.length === 0) return data;
  const scrub = (x: unknown): unknown =>
    typeof x === 'string' ? secrets.reduce((s, v) => s.split(v).join('***'), x)
    : Array.isArray(x) ? x.map(scrub)
    : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, scrub(v)]))
    : x;
  return scrub(data) as T;
}
