/**
 * Network egress of Docker workspaces, against the real engine and image: what the agent can and cannot reach.
 * The stage is a network of our own (with IPv6) holding two recorder containers that log every TCP connection and
 * UDP packet they get: one stands in for an allowed domain, the other for the rest of the internet. Our own DNS
 * server on the host is the workspace's upstream resolver, so we can see exactly which names left the workspace.
 * Every "unreachable" is checked against a control: the same thing from an unfiltered container does get through.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { Cli, IMAGE, docker, dockerResources, makeGitRepo } from './support/cli.js';
import { until } from './support/wait.js';
import { parseQuestion } from '../src/providers/docker/egress-sidecar.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

const tag = randomBytes(3).toString('hex');
const net = `cvm-egress-${tag}`;
const privateNet = `cvm-egress-private-${tag}`;
// Documentation ranges stand in for public addresses; a random slice so parallel runs do not collide.
const slice = (parseInt(tag.slice(0, 2), 16) % 8) * 32;
const subnet4 = `198.51.100.${slice}/27`;
const gateway4 = `198.51.100.${slice + 1}`;
const subnet6 = `2001:db8:${tag.slice(0, 4)}::/64`;
const privateOctet = parseInt(tag.slice(2, 4), 16) % 200 + 20;
const privateGateway = `10.213.${privateOctet}.1`;

const RECORDER = `
const net = require('net'), dgram = require('dgram');
for (const p of [80, 443, 8080]) net.createServer((s) => { console.log('tcp', p, s.remoteAddress); s.on('error', () => {}); s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\nConnection: close\\r\\n\\r\\nhello\\n'); }).listen(p, '::');
const u = dgram.createSocket('udp6'); u.on('message', (m, r) => console.log('udp', r.address, String(m).trim())); u.bind(9999, '::');
console.log('ready');`;

interface Box {
  name: string;
  v4: string;
  v6: string;
}

const cli = new Cli();
const dnsQueries: string[] = [];
const hostHits: string[] = [];
let dns: dgram.Socket;
let hostServer: http.Server;
let allowedBox: Box;
let blockedBox: Box;
let ws: WorkspaceInfo;
/** The workspace's own addresses (its sidecar's), as recorders see them. */
let wsAddrs: string[] = [];

function startBox(role: string): Box {
  const name = `cvm-egress-${role}-${tag}`;
  const r = docker('run', '-d', '--name', name, '--network', net, '--label', `dev.claude-vm.test=egress-${tag}`, '--entrypoint', 'node', IMAGE, '-e', RECORDER);
  assert.equal(r.code, 0, r.out);
  const ip = (fmt: string) => docker('inspect', '-f', `{{range .NetworkSettings.Networks}}${fmt}{{end}}`, name).out;
  return { name, v4: ip('{{.IPAddress}}'), v6: ip('{{.GlobalIPv6Address}}') };
}

const logsOf = (b: Box) => docker('logs', b.name).out;

/**
 * Runs a shell command in an unfiltered container on the same network: the control for every "unreachable".
 * Asynchronous, because the servers it reaches may live in this very process.
 */
async function fromOutside(script: string): Promise<string> {
  const r = await promisify(execFile)('docker', ['run', '--rm', '--network', net, '--entrypoint', 'bash', IMAGE, '-c', script]);
  return (r.stdout + r.stderr).trim();
}

async function inWorkspace(script: string): Promise<{ code: number; out: string }> {
  const r = await cli.run(['exec', ws.id, '--', 'bash', '-c', script]);
  return { code: r.code, out: (r.stdout + r.stderr).trim() };
}

/** A tiny authoritative server: a few names, NXDOMAIN for the rest; it logs every name it is asked. */
function dnsAnswer(query: Buffer, records: Record<string, { a?: string; aaaa?: string }>): Buffer | null {
  const q = parseQuestion(query);
  if (!q) return null;
  dnsQueries.push(q.name.toLowerCase());
  const rec = records[q.name.toLowerCase()];
  const rdata = q.type === 1 && rec?.a ? Buffer.from(rec.a.split('.').map(Number)) : q.type === 28 && rec?.aaaa ? v6bytes(rec.aaaa) : null;
  const head = Buffer.alloc(12);
  head.writeUInt16BE(q.id, 0);
  head.writeUInt16BE(0x8180 | (rec ? 0 : 3), 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(rdata ? 1 : 0, 6);
  const parts = [head, query.subarray(12, q.end)];
  if (rdata) {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(q.type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(rdata.length, 10);
    parts.push(rr, rdata);
  }
  return Buffer.concat(parts);
}

function v6bytes(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

before(async () => {
  assert.equal(docker('network', 'create', '--ipv6', '--subnet', subnet4, '--gateway', gateway4, '--subnet', subnet6, '--label', `dev.claude-vm.test=egress-${tag}`, net).code, 0);
  // A private network gives the host a private address (its gateway) that workspaces could otherwise reach.
  assert.equal(docker('network', 'create', '--subnet', `10.213.${privateOctet}.0/24`, '--label', `dev.claude-vm.test=egress-${tag}`, privateNet).code, 0);
  allowedBox = startBox('allowed');
  blockedBox = startBox('blocked');
  await until('recorders listening', () => logsOf(allowedBox).includes('ready') && logsOf(blockedBox).includes('ready'));

  hostServer = http.createServer((req, res) => {
    hostHits.push(req.url ?? '');
    res.end('host\n');
  });
  await new Promise<void>((r) => hostServer.listen(0, '0.0.0.0', r));
  const records = {
    'allowed.test': { a: allowedBox.v4, aaaa: allowedBox.v6 },
    'blocked.test': { a: blockedBox.v4, aaaa: blockedBox.v6 },
    'metadata.allowed.test': { a: '169.254.169.254', aaaa: 'fd00:ec2::254' },
    'private.allowed.test': { a: privateGateway },
  };
  dns = dgram.createSocket('udp4');
  dns.on('message', (m, from) => {
    const a = dnsAnswer(m, records);
    if (a) dns.send(a, from.port, from.address);
  });
  await new Promise<void>((r) => dns.bind(0, gateway4, r));

  await cli.ok(['provider', 'add', 'fenced', '--type', 'docker', '--option', `network=${net}`, '--option', `egress-dns=${gateway4}:${(dns.address() as AddressInfo).port}`]);
  ws = JSON.parse(
    (await cli.ok(['workspace', 'up', makeGitRepo(), '--provider', 'fenced', '--image', IMAGE, '--json',
      '--allow-domain', 'allowed.test', '--allow-domain', '*.allowed.test'])).stdout,
  ) as WorkspaceInfo;
  const sidecar = `claude-vm-${ws.id}-egress`;
  wsAddrs = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}', sidecar).out.split(' ').filter(Boolean);
  assert.equal(wsAddrs.length, 2, 'the workspace has an IPv4 and an IPv6 address');
});

after(async () => {
  if (ws) await cli.run(['workspace', 'delete', ws.id, '--purge', '-y']);
  for (const b of [allowedBox, blockedBox]) if (b) docker('rm', '-f', b.name);
  docker('network', 'rm', net);
  docker('network', 'rm', privateNet);
  dns?.close();
  hostServer?.close();
});

const seenFrom = (b: Box) => logsOf(b).split('\n').filter((l) => wsAddrs.some((a) => l.split(' ').includes(a) || l.includes(`::ffff:${a}`)));

test('an allowed name is reachable over IPv4 and IPv6, and `workspace show` lists it', async () => {
  const v4 = await inWorkspace('curl -sS -4 http://allowed.test:8080/');
  assert.equal(v4.out, 'hello', v4.out);
  const v6 = await inWorkspace('curl -sS -6 http://allowed.test:8080/');
  assert.equal(v6.out, 'hello', v6.out);
  assert.ok(dnsQueries.includes('allowed.test'), 'the allowed name was resolved upstream');
  assert.equal(seenFrom(allowedBox).length, 2);

  const shown = await cli.json<WorkspaceInfo>(['workspace', 'show', ws.id]);
  assert.equal(shown.egress?.mode, 'allowlist');
  for (const d of ['allowed.test', '*.allowed.test', 'api.anthropic.com', 'registry.npmjs.org', 'pypi.org']) assert.ok(shown.egress?.allow.includes(d), d);
});

test('a destination that is not allowed is unreachable by HTTP, HTTPS, another port, direct IP, IPv6 and UDP', async () => {
  const b = blockedBox;
  const attempts = [
    'getent hosts blocked.test',
    `curl -sS -m 5 http://${b.v4}/`,
    `curl -sS -m 5 -k https://${b.v4}/`,
    `curl -sS -m 5 http://${b.v4}:8080/`,
    `curl -sS -m 5 -g http://[${b.v6}]:8080/`,
    // UDP is not allowed anywhere but the local resolver, not even to an allowed host.
    `echo from-workspace > /dev/udp/${b.v4}/9999`,
    `echo from-workspace > /dev/udp/${allowedBox.v4}/9999`,
  ];
  for (const a of attempts) {
    const r = await inWorkspace(a);
    if (!a.includes('/dev/udp')) assert.notEqual(r.code, 0, `${a} should fail, got: ${r.out}`);
  }
  // Control: an unfiltered container reaches the very same ports; once its packets are in, ours would be too.
  assert.equal(await fromOutside(`curl -sS http://${b.v4}:8080/ && curl -sS -g http://[${b.v6}]:8080/ && echo control > /dev/udp/${b.v4}/9999 && echo control > /dev/udp/${allowedBox.v4}/9999`), 'hello\nhello');
  await until('control packets received', () => logsOf(b).includes('control') && logsOf(allowedBox).includes('control'));
  assert.deepEqual(seenFrom(b), [], 'the blocked recorder never heard from the workspace');
  assert.ok(!logsOf(allowedBox).includes('from-workspace'), 'no UDP reached even the allowed host');
});

test('looking up a name that is not allowed sends no query out, and DNS cannot be sent around the resolver', async () => {
  const unique = `exfil-${randomBytes(6).toString('hex')}`;
  const port = (dns.address() as AddressInfo).port;
  const lookups = await inWorkspace(
    `getent hosts ${unique}.example.org; getent hosts ${unique}.test; ` +
    // Straight to the upstream resolver, skipping the workspace's own.
    `node -e "const s=require('dgram').createSocket('udp4');const n='${unique}-direct';const q=Buffer.concat([Buffer.from('beef01000001000000000000','hex'),Buffer.from([n.length]),Buffer.from(n),Buffer.from('0000010001','hex')]);s.send(q,${port},'${gateway4}',()=>s.close())"`,
  );
  assert.doesNotMatch(lookups.out, /\d+\.\d+\.\d+\.\d+/, 'nothing resolved');
  // Control: an allowed name asked after them does arrive, so anything sent before it would have too.
  const control = `${unique}-control.allowed.test`;
  await inWorkspace(`getent hosts ${control}`);
  await until('the allowed lookup reached the upstream resolver', () => dnsQueries.includes(control));
  assert.deepEqual(dnsQueries.filter((q) => q.includes(unique) && q !== control), []);
});

test('cloud metadata and private addresses stay unreachable, even through an allowed name', async () => {
  const port = (hostServer.address() as AddressInfo).port;
  // Control: the private address is a live server, reachable without the filter.
  assert.equal(await fromOutside(`curl -sS http://${privateGateway}:${port}/outside`), 'host');
  const before = hostHits.length;

  const names = await inWorkspace('getent ahosts metadata.allowed.test; getent ahosts private.allowed.test; echo done');
  assert.equal(names.out, 'done', 'answers pointing at metadata or private addresses are stripped');
  assert.ok(dnsQueries.includes('metadata.allowed.test') && dnsQueries.includes('private.allowed.test'));
  for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://100.100.100.200/', '-g http://[fd00:ec2::254]/', `http://${privateGateway}:${port}/inside`, `--resolve private.allowed.test:${port}:${privateGateway} http://private.allowed.test:${port}/inside`]) {
    const r = await inWorkspace(`curl -sS -m 5 ${url}`);
    assert.notEqual(r.code, 0, `${url} should fail, got: ${r.out}`);
  }
  assert.equal(hostHits.length, before, 'the private server never heard from the workspace');
});

test('the agent cannot change the rules', async () => {
  const r = await inWorkspace('nft flush ruleset 2>&1 || echo refused; id -u');
  assert.match(r.out, /refused\n1000$/);
  const still = await inWorkspace(`curl -sS -m 5 http://${blockedBox.v4}:8080/`);
  assert.notEqual(still.code, 0);
});

test('if the filter stops, the workspace is cut off (not let out) and reports an error; down and up restore it', async () => {
  docker('kill', `claude-vm-${ws.id}-egress`);
  const r = await inWorkspace(`curl -sS -m 5 http://${allowedBox.v4}:8080/; curl -sS -m 5 http://${blockedBox.v4}:8080/`);
  assert.doesNotMatch(r.out, /hello/);
  const shown = await cli.json<WorkspaceInfo>(['workspace', 'show', ws.id]);
  assert.equal(shown.status, 'error');
  assert.match(shown.statusReason ?? '', /egress filter stopped/);
  await cli.ok(['workspace', 'down', ws.id]);
  await cli.ok(['workspace', 'up', ws.id]);
  assert.equal((await inWorkspace('curl -sS http://allowed.test:8080/')).out, 'hello');
});

test('a bad --allow-domain is refused with one line and nothing is created', async () => {
  const other = new Cli();
  const r = await other.run(['workspace', 'up', makeGitRepo(), '--image', IMAGE, '--allow-domain', 'not a domain']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: "not a domain" is not a domain name, \*\.domain wildcard, IP address or CIDR\.\nhint: /);
  assert.deepEqual(await other.json(['workspace', 'list']), []);
});

test('with host networking egress cannot be filtered: the workspace says so and runs unfiltered', async () => {
  const other = new Cli();
  await other.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host']);
  const up = await other.ok(['workspace', 'up', makeGitRepo(), '--provider', 'hostnet', '--image', IMAGE, '--json']);
  const w = JSON.parse(up.stdout) as WorkspaceInfo;
  assert.match(up.stderr, /note: Network egress is open/);
  assert.equal(w.egress?.mode, 'open');
  assert.deepEqual(dockerResources(w.id).containers, [`claude-vm-${w.id}`], 'no sidecar');
  await other.ok(['workspace', 'delete', w.id, '--purge', '-y']);
});
