/**
 * The Fly provider against the Fly stand-in (Fly's published Machines API spec, real containers behind it):
 * rate limits, server errors and wait timeouts are ridden out, a full region falls back to the next one with
 * nothing left behind, a foreign lease stops a change with a clear sentence, exec is binary-safe both ways and
 * refuses a terminal, and the provider never sends anything the spec does not allow.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { IMAGE } from './support/cli.js';
import { FlyStandin } from './support/fly-standin.js';
import { flyProviderFactory, type FlyProvider } from '../src/providers/fly/index.js';
import type { ResourceRefs, WorkspaceSpec } from '../src/providers/provider.js';
import { UserError } from '../src/protocol/errors.js';

const TOKEN = 'fo1_standin-secret-token';
let fly: FlyStandin;
before(async () => {
  fly = await FlyStandin.start({ token: TOKEN, apps: [{ name: 'cvm-api-test', org: 'personal' }] });
});
after(async () => {
  await fly.close();
});

function provider(extra: Record<string, string> = {}): FlyProvider {
  const options = { token: TOKEN, app: 'cvm-api-test', region: 'iad', 'api-url': fly.url, 'control-plane-url': 'http://cp.invalid', ...extra };
  return flyProviderFactory.create(options, '/nonexistent') as FlyProvider;
}

function spec(id: string): WorkspaceSpec {
  return { id, image: IMAGE, labels: { 'dev.claude-vm.workspace': id }, env: { CLAUDE_VM_WORKSPACE_ID: id, SOME_API_TOKEN: 'hidden-value' }, size: 'shared-cpu-1x' };
}

/** Runs a command through the provider, collecting stdout and stderr as bytes. */
async function run(p: FlyProvider, refs: ResourceRefs, argv: string[], stdin?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: Buffer }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write: (c: Buffer, _e, cb) => (into.push(c), cb()) });
  const input = stdin ? new PassThrough().end(stdin) : undefined;
  const h = await p.exec(refs, { argv, stdin: input, stdout: sink(out), stderr: sink(err) });
  return { code: await h.exit, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

test('rate limits, server errors and wait timeouts are retried; the machine comes up anyway', { timeout: 300_000 }, async () => {
  const p = provider();
  fly.inject({ operationId: 'Volumes_create', status: 429, times: 2, retryAfterSeconds: 1, error: 'rate limit exceeded' });
  fly.inject({ operationId: 'Machines_create', status: 503, error: 'service unavailable' });
  fly.inject({ operationId: 'Machines_wait', status: 408, times: 2, error: 'deadline_exceeded' });
  const steps: string[] = [];
  const refs = await p.create(spec('retry-ws-0001'), (e) => steps.push(`${e.step}: ${e.detail ?? ''}`));
  assert.equal(fly.count('Volumes_create', 429), 2);
  assert.equal(fly.count('Machines_create', 503), 1);
  assert.equal(fly.count('Machines_wait', 408), 2);
  assert.match(steps.join('\n'), /Estimated cost: \$0\.0079\/hour while running \(shared-cpu-1x: 1 shared CPU, 1024 MB\), plus \$1\.50\/month for the 10 GB volume/);
  assert.match(steps.join('\n'), /Creating volume: cvm_retry_ws_0001, 10 GB in iad\nCreating machine: claude-vm-retry-ws-0001 in iad/);
  assert.equal(fly.machines.get(refs.machine!)!.state, 'started');
  assert.equal(fly.volumes.get(refs.volume!)!.attached_machine_id, refs.machine);

  await p.start(refs);
  assert.deepEqual((await p.status(refs)).state, 'running');
  // The volume was root's; the workspace user owns it now, and a secret-looking value is a root-only file, not env.
  const who = await run(p, refs, ['sh', '-c', 'id -un; pwd; stat -c %U /workspace; echo "token=${SOME_API_TOKEN:-unset}"; cat /run/claude-vm/secrets/SOME_API_TOKEN 2>&1; echo "id=$CLAUDE_VM_WORKSPACE_ID"']);
  assert.equal(who.code, 0, who.stderr.toString());
  assert.match(who.stdout.toString(), /^dev\n\/workspace\ndev\ntoken=unset\n.*Permission denied\nid=retry-ws-0001\n$/);
  const root = await p.exec(refs, { argv: ['cat', '/run/claude-vm/secrets/SOME_API_TOKEN'], asRoot: true, stdout: new PassThrough().on('data', (d: Buffer) => assert.equal(d.toString(), 'hidden-value')) });
  assert.equal(await root.exit, 0);

  await p.delete(refs, { purge: true });
  assert.equal(fly.machines.get(refs.machine!)!.state, 'destroyed');
  assert.equal(fly.volumes.get(refs.volume!)!.state, 'destroyed');
  assert.deepEqual(fly.violations, []);
});

test('a region without capacity falls back to the next one, leaving nothing behind in the full one', { timeout: 300_000 }, async () => {
  fly.fullRegions.add('iad');
  try {
    const steps: string[] = [];
    const refs = await provider({ 'fallback-regions': 'ord' }).create(spec('fallback-ws-0002'), (e) => steps.push(`${e.step}: ${e.detail ?? ''}`));
    assert.equal(refs.region, 'ord');
    assert.match(steps.join('\n'), /No capacity: iad: no capacity\nCreating volume: cvm_fallback_ws_0002, 10 GB in ord/);
    assert.deepEqual([...fly.volumes.values()].filter((v) => v.state !== 'destroyed').map((v) => v.region), ['ord']);
    await provider().delete(refs, { purge: true });

    // Without a fallback region the error says what to do, and no volume is left in the full region.
    const err = await provider().create(spec('full-ws-0003')).catch((e: unknown) => e);
    assert.ok(err instanceof UserError);
    assert.match(err.message, /^Fly has no capacity for a shared-cpu-1x machine in iad \(no capacity\)\.$/);
    assert.match(err.hint ?? '', /fallback-regions/);
    assert.deepEqual([...fly.volumes.values()].filter((v) => v.state !== 'destroyed'), []);
  } finally {
    fly.fullRegions.delete('iad');
  }
  // The volume came, then the machine found the region full: the volume goes again.
  fly.inject({ operationId: 'Machines_create', status: 412, error: 'insufficient resources to create new machine' });
  const refs = await provider({ 'fallback-regions': 'ams' }).create(spec('fallback-ws-0004'));
  assert.equal(refs.region, 'ams');
  assert.deepEqual([...fly.volumes.values()].filter((v) => v.state !== 'destroyed').map((v) => v.region), ['ams']);
  await provider().delete(refs, { purge: true });
  assert.deepEqual(fly.violations, []);
});

test('a lease held by someone else blocks a stop with a clear error; once released, stop and suspend work', { timeout: 300_000 }, async () => {
  const p = provider();
  const refs = await p.create(spec('lease-ws-0005'));
  await p.start(refs);
  fly.holdLease(refs.machine!, 'fly deploy by alice');
  const err = await p.stop(refs).catch((e: unknown) => e);
  assert.ok(err instanceof UserError, String(err));
  assert.equal(err.message, `Fly Machine ${refs.machine} is locked by another operation (fly deploy by alice), so it was not changed.`);
  assert.equal(fly.machines.get(refs.machine!)!.state, 'started', 'the machine was not touched');
  fly.dropLease(refs.machine!);

  await p.stop(refs);
  assert.equal(fly.machines.get(refs.machine!)!.state, 'stopped');
  assert.deepEqual(await p.status(refs), { state: 'stopped' });
  await p.start(refs);
  const marker = await run(p, refs, ['sh', '-c', 'sleep 600 >/dev/null 2>&1 & echo $!']);
  const pid = marker.stdout.toString().trim();

  // Suspend keeps the processes (Fly resumes from a snapshot; the stand-in pauses the container).
  const suspending = provider({ 'stop-mode': 'suspend' });
  await suspending.stop(refs);
  assert.equal(fly.machines.get(refs.machine!)!.state, 'suspended');
  assert.deepEqual(await p.status(refs), { state: 'stopped' });
  await suspending.start(refs);
  assert.equal((await run(p, refs, ['sh', '-c', `kill -0 ${pid} && echo alive`])).stdout.toString(), 'alive\n');

  // Logs are the machine's events, oldest first.
  let log = '';
  await p.logs(refs, { stdout: new Writable({ write: (c: Buffer, _e, cb) => ((log += c), cb()) }) });
  assert.match(log, /launch created[\s\S]*start started[\s\S]*stop stopped[\s\S]*suspend suspended[\s\S]*start started/);

  await p.delete(refs, { purge: false });
  assert.equal(fly.machines.get(refs.machine!)!.state, 'destroyed');
  assert.equal(fly.volumes.get(refs.volume!)!.state, 'created', 'delete without purge keeps the volume');
  assert.deepEqual(await p.status(refs), { state: 'missing', detail: `Fly Machine ${refs.machine} is destroyed` });
  // Recreating finds the kept volume by name.
  const again = await p.create(spec('lease-ws-0005'));
  assert.equal(again.volume, refs.volume);
  await p.delete(again, { purge: true });
  assert.deepEqual(fly.violations, []);
});

test('exec is binary-safe both ways, big inputs go up in pieces, exit codes pass through, and a terminal is refused', { timeout: 300_000 }, async () => {
  const p = provider();
  const refs = await p.create(spec('exec-ws-0006'));
  await p.start(refs);
  const big = randomBytes(5 << 20);
  const hashed = await run(p, refs, ['sh', '-c', 'cat > /tmp/in; sha256sum < /tmp/in | cut -d" " -f1; wc -c < /tmp/in'], big);
  assert.equal(hashed.stdout.toString(), `${createHash('sha256').update(big).digest('hex')}\n${big.length}\n`);
  const bytes = Buffer.from([0, 255, 1, 128, 10, 13, 0]);
  const echoed = await run(p, refs, ['cat'], bytes);
  assert.deepEqual(echoed.stdout, bytes);
  const failed = await run(p, refs, ['sh', '-c', 'echo out; echo oops >&2; exit 42']);
  assert.deepEqual([failed.code, failed.stdout.toString(), failed.stderr.toString()], [42, 'out\n', 'oops\n']);
  const nowhere = await p.exec(refs, { argv: ['pwd'], cwd: '/no/such/dir', stdout: new PassThrough(), stderr: new PassThrough() });
  assert.equal(await nowhere.exit, 126);
  await assert.rejects(p.exec(refs, { argv: ['sh'], tty: { rows: 24, cols: 80 }, stdout: new PassThrough() }), /no terminal.*/);
  await p.delete(refs, { purge: true });
  assert.deepEqual(fly.violations, []);
  assert.deepEqual(await fly.backing.leftovers(), { containers: 0, volumes: 0 });
});

test('the stand-in catches requests the spec does not allow', async () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };
  assert.equal((await fetch(`${fly.url}/v1/apps/cvm-api-test/volumes?colour=blue`, { headers: auth }).then((r) => (r.body?.cancel(), r))).status, 200);
  const typo = await fetch(`${fly.url}/v1/apps/cvm-api-test/volumes`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'x', region: 'nowhere', size_gb: '10', sizegb: 1 }),
  });
  assert.equal(typo.status, 400);
  await typo.text();
  const unknown = await fetch(`${fly.url}/v1/apps/cvm-api-test/machines/abc/teleport`, { method: 'POST', headers: auth });
  assert.equal(unknown.status, 404);
  assert.deepEqual(fly.violations.splice(0), [
    'GET /v1/apps/cvm-api-test/volumes (Volumes_list): query parameter "colour" is not in the spec',
    'POST /v1/apps/cvm-api-test/volumes (Volumes_create): body.size_gb: expected an integer, got string "10"',
    'POST /v1/apps/cvm-api-test/volumes (Volumes_create): body.sizegb is not in the spec',
    'POST /v1/apps/cvm-api-test/machines/abc/teleport: no such operation in the spec',
  ]);
});
