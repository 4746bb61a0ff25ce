/**
 * @module What a workspace may reach on the network: the allowlist entries (names, wildcards, addresses, CIDRs),
 * how they are checked and sorted. Shared by the core (which builds the list) and providers (which enforce it).
 */
import { isIP } from 'node:net';
import { UserError } from '../protocol/errors.js';
import type { ResourceRefs } from './provider.js';

export type EgressMode = 'allowlist' | 'open';
export const EGRESS_MODES: readonly EgressMode[] = ['allowlist', 'open'];

/** The policy the core asks for; a provider adds what it needs itself (its tunnel host) and may not be able to filter. */
export interface EgressSpec {
  mode: EgressMode;
  /** `example.com` (that name only), `*.example.com` (its subdomains), an IP address, or a CIDR. */
  allow: string[];
}

/** An allowlist split by kind, as enforcers use it. */
export interface EgressEntries {
  names: string[];
  v4: string[];
  v6: string[];
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Normalises one entry or throws a UserError naming the problem. A URL is accepted and reduced to its host, so a
 * base URL can be passed as it is written in the settings.
 */
export function normalizeAllowEntry(raw: string): string {
  let s = raw.trim().toLowerCase();
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(s)) {
    try {
      s = new URL(s).hostname;
    } catch {
      throw badEntry(raw);
    }
  }
  s = s.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const [addr, bits, extra] = s.split('/');
  if (bits !== undefined || isIP(addr ?? '')) {
    const family = isIP(addr ?? '');
    const max = family === 4 ? 32 : 128;
    if (!family || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) throw badEntry(raw);
    return s;
  }
  const name = s.startsWith('*.') ? s.slice(2) : s;
  if (name.length > 253 || !name.includes('.') || !name.split('.').every((l) => LABEL.test(l))) throw badEntry(raw);
  return s;
}

/** Normalised, de-duplicated and validated; the first bad entry throws. */
export function normalizeAllowList(entries: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const e of entries) if (e.trim()) out.add(normalizeAllowEntry(e));
  return [...out];
}

export function splitAllowList(entries: string[]): EgressEntries {
  const out: EgressEntries = { names: [], v4: [], v6: [] };
  for (const e of entries) {
    const family = isIP(e.split('/')[0]!);
    (family === 4 ? out.v4 : family === 6 ? out.v6 : out.names).push(e);
  }
  return out;
}

/** `egress=…` as a provider option or request field. */
export function parseEgressMode(v: string | undefined, what: string): EgressMode | undefined {
  if (v === undefined || v === '') return undefined;
  if (!EGRESS_MODES.includes(v as EgressMode)) throw new UserError('invalid_argument', `${what} must be one of ${EGRESS_MODES.join(', ')}, not "${v}".`);
  return v as EgressMode;
}

function badEntry(raw: string): UserError {
  return new UserError(
    'invalid_argument',
    `"${raw}" is not a domain name, *.domain wildcard, IP address or CIDR.`,
    'Examples: --allow-domain api.example.com, --allow-domain "*.example.com", --allow-domain 203.0.113.0/24.',
  );
}

/**
 * What a workspace may reach, from the resources its provider recorded: providers that filter egress record
 * `egressMode` (allowlist, open, off) and `egressAllow` (the effective entries, space-separated).
 */
export function egressInfo(refs: ResourceRefs): { mode: 'allowlist' | 'open' | 'off'; allow: string[] } | undefined {
  const mode = refs.egressMode;
  if (mode !== 'allowlist' && mode !== 'open' && mode !== 'off') return undefined;
  return { mode, allow: refs.egressAllow ? refs.egressAllow.split(' ') : [] };
}
