/**
 * @module The egress enforcer that runs in a workspace's sidecar container, which owns the network namespace the
 * workspace joins. As root with CAP_NET_ADMIN it installs an nftables table (default drop) and then only adds
 * addresses to it; a child process without privileges (its own uid) is the DNS forwarder on 127.0.0.1:53: it
 * answers allowed names only and hands every address it answers with to the parent, which checks it again and
 * allows it for its TTL. This file is sent into the container as `node -e` source, so it imports nothing but
 * Node's own modules; the pure parts are exported for the unit tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { BlockList, isIP } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';

export const TABLE = 'claude_vm_egress';
/** Cloud metadata services: never reachable, whatever the allowlist says (all of link-local goes with them). */
export const METADATA = ['169.254.0.0/16', '100.100.100.200', 'fd00:ec2::254'];
/** Private, local and special ranges: not reachable through a name, only through an explicit address or CIDR. */
export const PRIVATE = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16',
  '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
  // NAT64, 6to4 and Teredo embed IPv4 addresses, private ones included.
  '::/127', '::ffff:0:0/96', '64:ff9b::/96', '64:ff9b:1::/48', '100::/64', '2001::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'ff00::/8',
];
/** Docker's embedded resolver on user-defined networks: it answers any name, so only the forwarder may ask it. */
const DOCKER_DNS = '127.0.0.11';
export const READY_FILE = '/run/egress/ready';

export interface SidecarConfig {
  /** Allowed names: `example.com` or `*.example.com`, lower case. */
  names: string[];
  /** Explicitly allowed addresses and CIDRs (these may be private). */
  v4: string[];
  v6: string[];
  /** `ip`, `ip:port` or `[ip6]:port`; default: the first nameserver Docker gave the container. */
  upstream?: string;
  /** The uid the DNS forwarder runs as; only its sockets may reach the upstream resolver. */
  dnsUid: number;
}

export interface Upstream {
  host: string;
  port: number;
  family: 4 | 6;
}

export function parseUpstream(s: string): Upstream {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? (isIP(s) === 6 ? [s, s, undefined] : /^([^:]+)(?::(\d+))?$/.exec(s));
  const host = m?.[1] ?? '';
  const family = isIP(host);
  if (!family) throw new Error(`upstream resolver "${s}" is not an IP address`);
  return { host, port: Number(m?.[2] ?? 53), family: family as 4 | 6 };
}

/** The first `nameserver` line of a resolv.conf. */
export function nameserverOf(resolvConf: string): string | undefined {
  return /^\s*nameserver\s+(\S+)/m.exec(resolvConf)?.[1];
}

/** The whole nftables table, applied in one transaction (replacing any earlier one). */
export function ruleset(c: SidecarConfig, up: Upstream): string {
  const v4 = (xs: string[]) => xs.filter((x) => isIP(x.split('/')[0]!) === 4);
  const v6 = (xs: string[]) => xs.filter((x) => isIP(x.split('/')[0]!) === 6);
  const set = (name: string, type: string, flags: string, elems: string[]) =>
    `  set ${name} { type ${type}; flags ${flags};${elems.length ? ` elements = { ${elems.join(', ')} };` : ''} }`;
  const ip = (fam: 4 | 6) => (fam === 4 ? 'ip' : 'ip6');
  return [
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    set('metadata4', 'ipv4_addr', 'interval', v4(METADATA)),
    set('metadata6', 'ipv6_addr', 'interval', v6(METADATA)),
    set('private4', 'ipv4_addr', 'interval', v4(PRIVATE)),
    set('private6', 'ipv6_addr', 'interval', v6(PRIVATE)),
    set('static4', 'ipv4_addr', 'interval; auto-merge', c.v4),
    set('static6', 'ipv6_addr', 'interval; auto-merge', c.v6),
    set('dynamic4', 'ipv4_addr', 'timeout', []),
    set('dynamic6', 'ipv6_addr', 'timeout', []),
    '  chain output {',
    '    type filter hook output priority filter; policy drop;',
    // Only the forwarder talks to the upstream resolver, and beyond its own clients on loopback to nothing else.
    `    meta skuid ${c.dnsUid} ${ip(up.family)} daddr ${up.host} accept`,
    // Docker's embedded resolver sends its own upstream queries from inside this namespace, as root. Only the
    // forwarder may ask it (rule above), and the agent is not root; see docs/security.md for what this leaves open.
    ...(up.host === DOCKER_DNS ? ['    meta skuid 0 meta l4proto { tcp, udp } th dport 53 accept'] : []),
    `    ip daddr ${DOCKER_DNS} drop`,
    '    oif "lo" accept',
    `    meta skuid ${c.dnsUid} drop`,
    '    ct state established,related accept',
    // IPv6 needs neighbour discovery to reach even its gateway.
    '    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept',
    '    ip daddr @metadata4 goto refuse',
    '    ip6 daddr @metadata6 goto refuse',
    '    meta l4proto tcp ip daddr @static4 accept',
    '    meta l4proto tcp ip6 daddr @static6 accept',
    '    ip daddr @private4 goto refuse',
    '    ip6 daddr @private6 goto refuse',
    '    meta l4proto tcp ip daddr @dynamic4 accept',
    '    meta l4proto tcp ip6 daddr @dynamic6 accept',
    '    goto refuse',
    '  }',
    // Refuse quickly rather than let clients hang until their timeout (the policy still drops if this fails).
    '  chain refuse {',
    '    meta l4proto tcp reject with tcp reset',
    '    reject with icmpx type admin-prohibited',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Metadata, private and explicitly allowed ranges, for checking single addresses in this process. */
export function addressRules(c: Pick<SidecarConfig, 'v4' | 'v6'>): { blocked: (a: string) => boolean } {
  // One list per family: BlockList would match IPv4 addresses against IPv4-mapped IPv6 rules (::ffff:0:0/96).
  const list = (xs: string[], family: 4 | 6) => {
    const b = new BlockList();
    for (const x of xs) {
      const [addr, bits] = x.split('/') as [string, string | undefined];
      if (isIP(addr) !== family) continue;
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) b.addAddress(addr, type);
      else b.addSubnet(addr, Number(bits), type);
    }
    return b;
  };
  const lists = (xs: string[]) => ({ 4: list(xs, 4), 6: list(xs, 6) });
  const metadata = lists(METADATA);
  const priv = lists(PRIVATE);
  const explicit = lists([...c.v4, ...c.v6]);
  return {
    blocked: (a) => {
      const family = isIP(a);
      if (family !== 4 && family !== 6) return true;
      const type = family === 6 ? 'ipv6' : 'ipv4';
      return metadata[family].check(a, type) || (priv[family].check(a, type) && !explicit[family].check(a, type));
    },
  };
}

/** True when a queried name is on the list: exactly, or under a `*.` entry. */
export function nameAllowed(names: string[], qname: string): boolean {
  const n = qname.toLowerCase().replace(/\.$/, '');
  return names.some((e) => (e.startsWith('*.') ? n.endsWith(e.slice(1)) : n === e));
}

// ---- DNS wire format (RFC 1035), just what a filtering forwarder needs.

export interface Question {
  id: number;
  name: string;
  type: number;
  /** Offset just past the question section. */
  end: number;
}

export interface AddressAnswer {
  address: string;
  family: 4 | 6;
  ttl: number;
}

const A = 1;
const CNAME = 5;
const AAAA = 28;
export const RCODE = { SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

function readName(buf: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let off = start;
  let next = -1;
  for (let jumps = 0; jumps < 64; ) {
    if (off >= buf.length) throw new Error('name runs past the message');
    const len = buf[off]!;
    if (len === 0) return { name: labels.join('.'), next: next < 0 ? off + 1 : next };
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = off + 2;
      off = ((len & 0x3f) << 8) | buf[off + 1]!;
      jumps++;
      continue;
    }
    if (len > 63 || off + 1 + len > buf.length) throw new Error('bad label');
    labels.push(buf.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  throw new Error('compression loop');
}

function encodeName(name: string): Buffer {
  const parts = name ? name.split('.') : [];
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

/** The one question of a standard query, or null for anything else (responses, multi-question, garbage). */
export function parseQuestion(msg: Buffer): Question | null {
  try {
    if (msg.length < 12 || msg[2]! & 0x80 || msg.readUInt16BE(4) !== 1) return null;
    const { name, next } = readName(msg, 12);
    if (next + 4 > msg.length) return null;
    return { id: msg.readUInt16BE(0), name, type: msg.readUInt16BE(next), end: next + 4 };
  } catch {
    return null;
  }
}

/** An answer with no records and the given rcode, echoing the question; never sent upstream. */
export function refusal(query: Buffer, q: Question, rcode: number): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(q.id, 0);
  head.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x80 | rcode, 2); // QR, opcode+RD kept, RA
  head.writeUInt16BE(1, 4);
  return Buffer.concat([head, query.subarray(12, q.end)]);
}

/**
 * Splits an upstream answer's address records into those the workspace may use and those it may not. When some
 * are dropped the answer is rebuilt with the question, the CNAMEs and the kept addresses only.
 */
export function filterAnswer(res: Buffer, blocked: (a: string) => boolean): { message: Buffer; addresses: AddressAnswer[] } {
  const qd = res.readUInt16BE(4);
  const an = res.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = readName(res, off).next + 4;
  const questionEnd = off;
  const kept: Buffer[] = [];
  const addresses: AddressAnswer[] = [];
  let dropped = 0;
  for (let i = 0; i < an; i++) {
    const { name, next } = readName(res, off);
    const type = res.readUInt16BE(next);
    const ttl = res.readUInt32BE(next + 4);
    const len = res.readUInt16BE(next + 8);
    const rdata = res.subarray(next + 10, next + 10 + len);
    if (rdata.length !== len) throw new Error('record runs past the message');
    off = next + 10 + len;
    const fixed = res.subarray(next, next + 8);
    if ((type === A && len === 4) || (type === AAAA && len === 16)) {
      const address = type === A ? [...rdata].join('.') : ipv6(rdata);
      if (blocked(address)) {
        dropped++;
        continue;
      }
      addresses.push({ address, family: type === A ? 4 : 6, ttl });
      kept.push(Buffer.concat([encodeName(name), fixed, u16(len), rdata]));
    } else if (type === CNAME) {
      const target = encodeName(readName(res, next + 10).name);
      kept.push(Buffer.concat([encodeName(name), fixed, u16(target.length), target]));
    }
  }
  if (!dropped) return { message: res, addresses };
  const head = Buffer.from(res.subarray(0, 12));
  head.writeUInt16BE(kept.length, 6);
  head.writeUInt32BE(0, 8); // no authority, no additional records
  return { message: Buffer.concat([head, res.subarray(12, questionEnd), ...kept]), addresses };
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** How long an answered address stays allowed: its TTL, but at least a minute so short-TTL hosts stay usable. */
export function allowSeconds(ttl: number): number {
  return Math.min(Math.max(ttl, 60), 86_400) + 30;
}

/** The nft batch that (re)allows addresses for their TTL; add-delete-add resets an existing element's timeout. */
export function allowBatch(addrs: AddressAnswer[]): string {
  return addrs
    .map((a) => {
      const el = `inet ${TABLE} dynamic${a.family} { ${a.address}`;
      return `add element ${el} timeout ${allowSeconds(a.ttl)}s }\ndelete element ${el} }\nadd element ${el} timeout ${allowSeconds(a.ttl)}s }\n`;
    })
    .join('');
}

// ---- the two processes

interface AllowRequest {
  seq: number;
  addresses: AddressAnswer[];
}

function log(msg: string): void {
  process.stderr.write(`claude-vm egress: ${msg}\n`);
}

function nft(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft failed: ${err.trim() || `exit ${code}`}`))));
    p.stdin.end(script);
  });
}

/** Root: rules first, then the unprivileged forwarder; any failure ends the container, and with it the network. */
async function enforcer(): Promise<void> {
  const c = JSON.parse(process.env.CLAUDE_VM_EGRESS ?? '') as SidecarConfig;
  const resolv = readFileSync('/etc/resolv.conf', 'utf8');
  const upstreamText = c.upstream || nameserverOf(resolv);
  if (!upstreamText) throw new Error('no upstream resolver: /etc/resolv.conf has no nameserver');
  const up = parseUpstream(upstreamText);
  await nft(ruleset(c, up));
  // The workspace shares this file (Docker gives a joined container its owner's): every lookup comes here.
  writeFileSync('/etc/resolv.conf', 'nameserver 127.0.0.1\noptions ndots:0\n');
  const rules = addressRules(c);
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    uid: c.dnsUid,
    gid: c.dnsUid,
    env: { ...process.env, CLAUDE_VM_EGRESS_ROLE: 'dns', CLAUDE_VM_EGRESS_UPSTREAM: `${up.family === 6 ? `[${up.host}]` : up.host}:${up.port}` },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('exit', (code, signal) => {
    log(`DNS forwarder exited (${signal ?? code}); stopping, which cuts the workspace off`);
    process.exit(1);
  });
  const stop = () => {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
  child.on('message', (m: { listening?: boolean } & Partial<AllowRequest>) => {
    if (m.listening) {
      writeFileSync(READY_FILE, `${Date.now()}\n`);
      log(`ready: ${c.names.length} names, ${c.v4.length + c.v6.length} addresses; upstream ${upstreamText}`);
      return;
    }
    // The forwarder is the less trusted side: check its addresses again before allowing them.
    const ok = (m.addresses ?? []).filter((a) => isIP(a.address) === a.family && !rules.blocked(a.address) && Number.isFinite(a.ttl));
    nft(allowBatch(ok)).then(
      () => child.send({ seq: m.seq, ok: true }),
      (e: Error) => {
        log(e.message);
        child.send({ seq: m.seq, ok: false });
      },
    );
  });
}

/** Unprivileged: answers on 127.0.0.1:53; only allowed names are ever sent upstream. */
function forwarder(): void {
  const c = JSON.parse(process.env.CLAUDE_VM_EGRESS ?? '') as SidecarConfig;
  const up = parseUpstream(process.env.CLAUDE_VM_EGRESS_UPSTREAM ?? '');
  const rules = addressRules(c);
  let seq = 0;
  const waiting = new Map<number, (ok: boolean) => void>();
  process.on('message', (m: { seq: number; ok: boolean }) => {
    waiting.get(m.seq)?.(m.ok);
    waiting.delete(m.seq);
  });
  process.on('disconnect', () => process.exit(1));
  const allow = (addresses: AddressAnswer[]) =>
    new Promise<boolean>((resolve) => {
      const n = ++seq;
      waiting.set(n, resolve);
      process.send!({ seq: n, addresses } satisfies AllowRequest);
    });

  const answer = async (query: Buffer): Promise<Buffer | null> => {
    const q = parseQuestion(query);
    if (!q) return null;
    if ((query[2]! & 0x78) !== 0) return refusal(query, q, RCODE.NOTIMP);
    if (!nameAllowed(c.names, q.name)) return refusal(query, q, RCODE.NXDOMAIN);
    try {
      const res = await ask(up, query, q.id);
      const { message, addresses } = filterAnswer(res, rules.blocked);
      if (addresses.length && !(await allow(addresses))) return refusal(query, q, RCODE.SERVFAIL);
      return message;
    } catch (e) {
      log(`lookup of ${q.name} failed: ${(e as Error).message}`);
      return refusal(query, q, RCODE.SERVFAIL);
    }
  };

  const server = dgram.createSocket('udp4');
  server.on('message', (msg, from) => {
    answer(msg).then((r) => r && server.send(r, from.port, from.address), (e: Error) => log(e.message));
  });
  server.on('error', (e) => {
    log(`DNS socket: ${e.message}`);
    process.exit(1);
  });
  server.bind(53, '127.0.0.1', () => process.send!({ listening: true }));
}

/** One query to the upstream resolver on a fresh socket (a fresh source port), two tries. */
async function ask(up: Upstream, query: Buffer, id: number): Promise<Buffer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const s = dgram.createSocket(up.family === 6 ? 'udp6' : 'udp4');
        const done = (f: () => void) => {
          clearTimeout(timer);
          s.close();
          f();
        };
        const timer = setTimeout(() => done(() => reject(new Error('no answer from upstream'))), 2500);
        s.on('message', (m, from) => {
          if (from.address === up.host && m.length >= 12 && m.readUInt16BE(0) === id) done(() => resolve(m));
        });
        s.on('error', (e) => done(() => reject(e)));
        s.send(query, up.port, up.host);
      });
    } catch (e) {
      if (attempt >= 1) throw e;
    }
  }
}

const role = process.env.CLAUDE_VM_EGRESS_ROLE;
if (role === 'enforcer') {
  enforcer().catch((e: Error) => {
    log(e.message);
    process.exit(1);
  });
} else if (role === 'dns') {
  forwarder();
}
