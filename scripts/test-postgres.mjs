// A throwaway PostgreSQL server for one test run: initdb into a temp dir (trust auth), start it on a free
// 127.0.0.1 port, and remove it all on stop. initdb refuses root, so as root the server runs as the postgres user.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const ROOT = '/usr/lib/postgresql';

/** The bin directory of the newest installed PostgreSQL, or undefined when none is. */
export function postgresBinDir() {
  if (!existsSync(ROOT)) return undefined;
  const versions = readdirSync(ROOT)
    .filter((v) => existsSync(join(ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(ROOT, versions[0], 'bin');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** uid/gid of the postgres user when we are root (initdb and postgres refuse root), else nothing to change. */
function runAs() {
  if (process.getuid?.() !== 0) return {};
  const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid === 0) throw new Error('Running as root, but there is no "postgres" user to run PostgreSQL as.');
  return { uid, gid };
}

const tail = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-20).join('\n') : '');

export async function startTestPostgres() {
  const bin = postgresBinDir();
  if (!bin) throw new Error(`PostgreSQL is not installed (no ${ROOT}/*/bin/initdb); run scripts/setup.sh.`);
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'cvm-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid);
  const opts = { cwd: dir, ...user };

  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], {
    ...opts,
    encoding: 'utf8',
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed:\n${init.stderr || init.stdout || init.error}`);
  }

  const port = await freePort();
  // The log is a file, not a pipe: the runner blocks in spawnSync while tests run and would never drain a pipe.
  const logFd = openSync(log, 'a');
  const server = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    { ...opts, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  let exited = null;
  const exit = new Promise((resolve) => server.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  server.once('error', (err) => (exited = { error: err }));
  // If the runner exits without stop() (a crash, process.exit), do not leave a server behind.
  const cleanup = () => {
    if (!exited) server.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    process.removeListener('exit', cleanup);
    if (!exited) {
      server.kill('SIGINT'); // fast shutdown: ends sessions, no waiting for clients
      await exit;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  for (let attempt = 0; ; attempt++) {
    if (exited) {
      const why = `PostgreSQL exited during start-up (${JSON.stringify(exited)}):\n${tail(log)}`;
      await stop();
      throw new Error(why);
    }
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return { url, stop };
    } catch (err) {
      await client.end().catch(() => undefined);
      if (attempt >= 300) {
        await stop();
        throw new Error(`PostgreSQL did not accept connections on port ${port}: ${err.message}\n${tail(log)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
