/**
 * @module `claude-vm server`: one process serving the API on TCP and, for workspaces on this machine, on a unix
 * socket they can have mounted in. On first start it creates an admin user and writes that user's token to
 * `<home>/token` (mode 0600), which the CLI on this machine uses without logging in.
 */
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { getRequestListener } from '@hono/node-server';
import { openStore } from '../snapshots/store.js';
import { SnapshotStore } from '../snapshots/engine.js';
import { UserError } from '../protocol/errors.js';
import { connectDb, defaultDbUrl } from '../store/db.js';
import { SecretBox } from '../store/secrets.js';
import { ControlPlane, type PolicyConfig } from './control-plane.js';
import { buildApi } from './api/index.js';
import { upgradeHandler } from './streams.js';
import { PolicyRunner } from './policies.js';
import { startPgFanout } from './pg-fanout.js';

export interface ServerOptions {
  home: string;
  /** host:port; port 0 picks a free one. */
  listen: string;
  db?: string;
  publicUrl?: string;
  /** Where other processes of a team deployment reach this one; default the listen URL. */
  internalUrl?: string;
  policy: PolicyConfig;
  /** A key file shared by every process of a team deployment; default `<home>/secret.key`. */
  secretKeyFile?: string;
  snapshots?: SnapshotConfig;
}

export interface SnapshotConfig {
  /** file:PATH or s3://bucket/prefix?endpoint=…; default file:<home>/snapshots. "off" switches snapshots off. */
  store?: string;
  /** Encrypt objects before they leave this process, with a key derived from the server's secret key. */
  encrypt?: boolean;
  keep?: number;
  intervalSeconds?: number | null;
  /** Replaces the default exclusions (node_modules). */
  exclude?: string[];
  includeCaches?: boolean;
}

export interface RunningServer {
  url: string;
  socketPath: string;
  cp: ControlPlane;
  close(): Promise<void>;
}

/** What the CLI reads to find the server of a home: written once the server answers. */
export interface ServerFile {
  url: string;
  pid: number;
  socket: string;
  instance: string;
}

export function serverFilePath(home: string): string {
  return join(home, 'server.json');
}

export function tokenFilePath(home: string): string {
  return join(home, 'token');
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  // Everything the server writes (database, WAL, logs, keys) is for its owner only; the socket is opened up below.
  process.umask(0o077);
  mkdirSync(o.home, { recursive: true, mode: 0o700 });
  const runDir = join(o.home, 'run');
  mkdirSync(runDir, { recursive: true });
  // Workspace containers (another uid) connect to the socket in here; the token, not the file mode, guards it.
  chmodSync(runDir, 0o755);
  const socketPath = join(runDir, 'server.sock');
  if (await answers(socketPath)) {
    throw new UserError('already_exists', `A claude-vm server is already running for ${o.home}.`, 'Stop it first, or give this one another CLAUDE_VM_HOME.');
  }
  const [host, portText] = splitListen(o.listen);
  const box = o.secretKeyFile ? SecretBox.fromFile(o.secretKeyFile) : SecretBox.forHome(o.home);
  const db = await connectDb(o.db ?? defaultDbUrl(o.home));
  const tcp = createServer();
  await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(Number(portText), host, resolve));
  const address = tcp.address();
  const port = typeof address === 'object' && address ? address.port : Number(portText);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const cp = new ControlPlane(db, box, o.home, { url, socketPath, publicUrl: o.publicUrl, internalUrl: o.internalUrl }, o.policy);
  const snap = o.snapshots ?? {};
  if (snap.store !== 'off') {
    const objects = await openStore(snap.store ?? `file:${join(o.home, 'snapshots')}`, snap.encrypt ? { encryptWith: box.derive('snapshots') } : {});
    cp.snapshots = new SnapshotStore(objects, { keep: snap.keep ?? 10, exclude: snap.exclude ?? [], includeCaches: !!snap.includeCaches });
    cp.snapshotIntervalSeconds = snap.intervalSeconds ?? null;
  }
  await bootstrapAdmin(cp, o.home);
  const app = buildApi(cp);
  const listener = getRequestListener(app.fetch);
  const onUpgrade = upgradeHandler(cp);
  tcp.on('request', listener).on('upgrade', onUpgrade);

  rmSync(socketPath, { force: true });
  const unix = createServer(listener).on('upgrade', onUpgrade);
  await new Promise<void>((resolve, reject) => unix.once('error', reject).listen(socketPath, resolve));
  chmodSync(socketPath, 0o666);

  const fanout = db.dialect === 'postgres' ? await startPgFanout(o.db!, cp.hub) : undefined;
  const policies = new PolicyRunner(cp);
  policies.start();
  void cp.keepProvidersConnected().catch(() => undefined);
  const file: ServerFile = { url, pid: process.pid, socket: socketPath, instance: cp.instanceId };
  // Atomically: a CLI (or a test) polling for it must never read half of it.
  writeFileSync(`${serverFilePath(o.home)}.tmp`, JSON.stringify(file) + '\n', { mode: 0o600 });
  renameSync(`${serverFilePath(o.home)}.tmp`, serverFilePath(o.home));

  const close = async () => {
    policies.stop();
    cp.tunnels.closeAll();
    await Promise.all([closeServer(tcp), closeServer(unix)]);
    await fanout?.close();
    await db.close();
    rmSync(socketPath, { force: true });
    try {
      if ((JSON.parse(readFileSync(serverFilePath(o.home), 'utf8')) as ServerFile).pid === process.pid) rmSync(serverFilePath(o.home), { force: true });
    } catch {
      // Already gone.
    }
  };
  return { url, socketPath, cp, close };
}

/**
 * The first start creates an admin. Its token goes to `<home>/token` for the CLI on this machine; rows written
 * before users existed (an older single-user home) become theirs.
 */
async function bootstrapAdmin(cp: ControlPlane, home: string): Promise<void> {
  const users = await cp.auth.listUsers();
  let admin = users.find((u) => u.isAdmin);
  const tokenFile = tokenFilePath(home);
  if (!admin) {
    const name = (userInfo().username || 'admin').toLowerCase().replace(/[^a-z0-9._-]/g, '') || 'admin';
    admin = await cp.auth.insertUser(/^[a-z]/.test(name) ? name : `u${name}`, true);
    await cp.auth.audit({ userId: admin.id, action: 'user.add', target: admin.id, detail: { name: admin.name, admin: true, bootstrap: true } });
  }
  if (!existsSync(tokenFile) && users.length <= 1) {
    const { secret } = await cp.auth.createToken({ userId: admin.id, name: 'local CLI', scope: 'api' });
    writeFileSync(tokenFile, secret + '\n', { mode: 0o600 });
  }
  await cp.store.adoptOrphans(admin.id);
}

function splitListen(listen: string): [string, string] {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) throw new UserError('invalid_argument', `Invalid --listen "${listen}".`, 'Use host:port, e.g. 127.0.0.1:7477 or 0.0.0.0:7477.');
  return [m[1] ?? (m[2] || '127.0.0.1'), m[3]!];
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
