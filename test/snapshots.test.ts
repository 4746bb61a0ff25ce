/**
 * Snapshots, as a user meets them: a workspace whose agent changed files, with an untracked data file and an unpushed
 * commit, is deleted and its Docker volume removed; `up` brings back the files, the commit and the conversation,
 * which takes a new message. Against the filesystem store and a real S3-compatible server (encrypted), a server
 * killed with -9 in the middle of an upload, a damaged pack, export/import into another server, and a move to
 * another provider.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BIN, Cli, IMAGE, docker, dockerResources, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { freePort, killHard, startServerProcess, type ServerProcess } from './support/cp-process.js';
import { startTestS3, type TestS3 } from './support/s3.js';
import { until } from './support/wait.js';
import type { AnyEvent } from '../src/protocol/events.js';
import type { SnapshotInfo, WorkspaceInfo } from '../src/protocol/types.js';

const SECRET = 'sk-ant-snapshot-test-7731';
let model: ScriptedAnthropic;
let s3: TestS3;
before(async () => {
  model = await ScriptedAnthropic.start();
  s3 = await startTestS3();
});
after(async () => {
  await model.close();
  await s3.close();
});

async function events(cli: Cli, conv: string): Promise<AnyEvent[]> {
  return (await cli.ok(['logs', conv, '--json'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
}

async function turns(cli: Cli, conv: string, n: number): Promise<AnyEvent[]> {
  let es: AnyEvent[] = [];
  return until(`turn ${n}`, async () => {
    es = await events(cli, conv);
    return es.filter((e) => e.type === 'turn.completed').length >= n && es;
  }, { explain: () => es.map((e) => `${e.seq}:${e.type}`).join(' ') });
}

const sh = async (cli: Cli, id: string, script: string) => (await cli.ok(['exec', id, '--', 'sh', '-c', script])).stdout;
const git = (args: string) => `git -c user.email=dev@example.com -c user.name=dev ${args}`;

/** A server of its own for `home`, with extra flags, and a CLI that talks to it. */
async function serverWith(args: string[], env: Record<string, string> = {}): Promise<{ server: ServerProcess; cli: Cli; home: string; port: number }> {
  const home = mkdtempSync(join(tmpdir(), 'cvm-snap-'));
  const port = await freePort();
  const server = await startServerProcess(home, { port, args, env });
  const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  return { server, cli, home, port };
}

for (const store of ['filesystem', 's3 (encrypted)'] as const) {
  test(`delete, then prune the volume: up brings back files, unpushed commit and the conversation (${store} store)`, { timeout: 10 * 60_000 }, async () => {
    const s = store === 'filesystem' ? await serverWith([]) : await serverWith(['--snapshot-store', s3.storeUrl, '--snapshot-encrypt'], s3.env);
    const { cli } = s;
    try {
      await cli.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host', '--option', `control-plane-url=${s.server.url}`]);
      await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', `ANTHROPIC_API_KEY=${SECRET}`]);
      const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'hostnet', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;

      // 1. The agent changes a tracked file; then an untracked data file and an unpushed commit.
      model.enqueue({ tools: [{ name: 'Write', input: { file_path: `${ws.projectDir}/README.md`, content: '# demo, edited by the agent\n' } }] }, { text: 'edited' });
      const conv = (await cli.ok(['new-chat', ws.id, '-m', 'edit the readme, codeword heron'])).stdout.trim();
      await turns(cli, conv, 1);
      await sh(cli, ws.id, `echo v1 > notes.txt && ${git('add notes.txt')} && ${git('commit -qm "unpushed work"')}`);
      // Sizes on both sides of the agent's paths: inline (< 64 KiB), one chunk on the thread pool, several chunks.
      await sh(cli, ws.id, 'head -c 3000000 /dev/urandom > data.bin && head -c 200000 /dev/urandom > mid.bin && ln mid.bin mid-link.bin && ln -s data.bin data-link && mkdir -p node_modules/big && echo skip > node_modules/big/x.js');
      const dataSum = await sh(cli, ws.id, 'sha256sum data.bin mid.bin');
      const statusBefore = await sh(cli, ws.id, 'git status --short');
      assert.match(statusBefore, /M README.md/);

      // 2. Delete (which snapshots first) and remove the volume: Docker holds nothing of the workspace.
      await cli.ok(['workspace', 'delete', ws.id, '-y']);
      assert.equal(docker('volume', 'rm', `claude-vm-${ws.id}`).code, 0);
      assert.deepEqual(dockerResources(ws.id), { containers: [], volumes: [] });
      const listed = await cli.json<SnapshotInfo[]>(['workspace', 'snapshots', ws.id]);
      assert.equal(listed.at(-1)?.reason, 'delete');

      // 3. Up: restored into a fresh container and volume.
      const up = await cli.ok(['workspace', 'up', ws.id]);
      assert.match(up.stderr, /Restored .* from its latest snapshot/);
      assert.equal(await sh(cli, ws.id, 'cat README.md'), '# demo, edited by the agent\n');
      assert.equal(await sh(cli, ws.id, 'sha256sum data.bin mid.bin'), dataSum);
      assert.equal(await sh(cli, ws.id, 'stat -c %h mid-link.bin; readlink data-link'), '2\ndata.bin\n', 'hard and symbolic links come back as links');
      assert.match(await sh(cli, ws.id, 'git log --oneline'), /unpushed work/);
      assert.equal(await sh(cli, ws.id, 'git status --short'), statusBefore);
      assert.equal(await sh(cli, ws.id, 'cat untracked.txt'), 'not in git\n');
      assert.equal(await sh(cli, ws.id, 'test -e node_modules && echo present || echo absent'), 'absent\n', 'node_modules is left out by default');

      // The conversation is back, and the agent resumes its session: the model sees the earlier exchange.
      model.enqueue({ text: 'the codeword was heron' });
      await cli.ok(['send', conv, 'what was the codeword?']);
      const es = await turns(cli, conv, 2);
      assert.equal(es.filter((e) => e.type === 'conversation.created').length, 1);
      const history = JSON.stringify((model.turnRequests.at(-1)!.body as { messages: unknown }).messages);
      assert.match(history, /codeword heron/);
      assert.doesNotMatch(history, new RegExp(SECRET));

      // What the store holds: no secret, no tunnel token, and (encrypted) no plaintext.
      const objects = await storeObjects(s.home, store);
      assert.ok(objects.length > 2);
      const everything = Buffer.concat(objects.map((o) => o.body)).toString('latin1');
      assert.doesNotMatch(everything, new RegExp(SECRET));
      if (store === 's3 (encrypted)') assert.doesNotMatch(everything, /README\.md|unpushed work|edited by the agent/, 'the store sees only ciphertext');
      else {
        const manifest = objects.find((o) => o.key.includes('/manifests/'))!.body.toString();
        assert.match(manifest, /app\/README\.md/);
        assert.doesNotMatch(manifest, /tunnel\.json|node_modules/);
      }

      // delete --purge takes the snapshots with it.
      await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
      assert.deepEqual((await storeObjects(s.home, store)).filter((o) => o.key.includes(ws.id)), []);
    } finally {
      await killHard(s.server);
    }
  });
}

test('kill -9 of the server mid-upload leaves the previous snapshot usable; a damaged pack is refused on restore', { timeout: 10 * 60_000 }, async () => {
  let s = await serverWith([]);
  const { cli } = s;
  try {
    await cli.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host', '--option', `control-plane-url=${s.server.url}`]);
    const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'hostnet', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
    await sh(cli, ws.id, 'echo first > first.txt');
    const first = JSON.parse((await cli.ok(['workspace', 'snapshot', ws.id, '--json'])).stdout) as SnapshotInfo;
    const packsDir = join(s.home, 'snapshots', ws.id, 'packs');
    const firstPacks = readdirSync(packsDir);

    // Incompressible data, so the upload takes a while; the server dies once the first new pack is stored.
    await sh(cli, ws.id, 'head -c 120000000 /dev/urandom > big.bin');
    const snap = spawn(process.execPath, [BIN, 'workspace', 'snapshot', ws.id], { env: { ...process.env, ...cli.env, CLAUDE_VM_HOME: cli.home }, stdio: 'ignore' });
    const end = Date.now() + 120_000;
    while (readdirSync(packsDir).filter((p) => !firstPacks.includes(p)).length === 0) {
      if (Date.now() > end) throw new Error('no new pack appeared');
      await new Promise((r) => setTimeout(r, 20));
    }
    await killHard(s.server);
    await new Promise((r) => snap.once('exit', r));
    s = { ...s, server: await startServerProcess(s.home, { port: s.port }) };

    // The crashed snapshot does not exist: no summary, no manifest (not even half of one).
    assert.deepEqual((await cli.json<SnapshotInfo[]>(['workspace', 'snapshots', ws.id])).map((x) => x.id), [first.id]);
    assert.deepEqual(readdirSync(join(s.home, 'snapshots', ws.id, 'manifests')).filter((f) => !f.includes('.tmp-')), [`${first.id}.json`]);
    assert.ok(readdirSync(packsDir).length > firstPacks.length, 'the crash left orphaned packs behind');

    // The next snapshot completes and collects the orphans.
    const second = JSON.parse((await cli.ok(['workspace', 'snapshot', ws.id, '--json'])).stdout) as SnapshotInfo;
    assert.ok(second.storedBytes > 119_000_000);
    const manifest = readFileSync(join(s.home, 'snapshots', ws.id, 'manifests', `${second.id}.json`), 'utf8');
    const referenced = new Set([...manifest.matchAll(/\["([0-9a-f]{24})",/g)].map((m) => m[1]));
    for (const p of readdirSync(packsDir).filter((f) => !f.includes('.tmp-'))) assert.ok(referenced.has(p) || firstPacks.includes(p), `pack ${p} is referenced`);

    // Restore from it onto a Docker that holds nothing of the workspace: the big file is whole.
    const bigSum = (await sh(cli, ws.id, 'sha256sum big.bin')).split(' ')[0];
    await cli.ok(['workspace', 'delete', ws.id, '-y']);
    assert.equal(docker('volume', 'rm', `claude-vm-${ws.id}`).code, 0);
    await cli.ok(['workspace', 'up', ws.id]);
    assert.equal((await sh(cli, ws.id, 'sha256sum big.bin')).split(' ')[0], bigSum);
    assert.equal(await sh(cli, ws.id, 'cat first.txt'), 'first\n');

    // A flipped byte in a pack: the restore stops with the reason, and nothing pretends to be restored.
    await cli.ok(['workspace', 'delete', ws.id, '-y']);
    assert.equal(docker('volume', 'rm', `claude-vm-${ws.id}`).code, 0);
    const latest = (await cli.json<SnapshotInfo[]>(['workspace', 'snapshots', ws.id])).at(-1)!;
    const latestManifest = readFileSync(join(s.home, 'snapshots', ws.id, 'manifests', `${latest.id}.json`), 'utf8');
    // The largest pack holds only big.bin; flip a byte in its middle.
    const packs = [...new Set([...latestManifest.matchAll(/\["([0-9a-f]{24})",/g)].map((m) => m[1]!))].map((p) => join(packsDir, p));
    const packFile = packs.sort((x, y) => readFileSync(y).length - readFileSync(x).length)[0]!;
    const bytes = readFileSync(packFile);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    writeFileSync(packFile, bytes);
    for (let attempt = 0; attempt < 2; attempt++) {
      // Twice: a half-restored volume is not mistaken for a restored one the second time.
      const bad = await cli.run(['workspace', 'up', ws.id]);
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stderr, /checksum mismatch in app\/big\.bin: the snapshot is damaged/);
    }
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await killHard(s.server);
  }
});

test('export to a tar, import into another server; move a workspace from Docker to the local provider', { timeout: 10 * 60_000 }, async () => {
  const a = await serverWith([]);
  const b = await serverWith([]);
  try {
    const ws = JSON.parse((await a.cli.ok(['workspace', 'up', makeGitRepo('app'), '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
    await sh(a.cli, ws.id, `echo exported > e.txt && ${git('add e.txt')} && ${git('commit -qm "to take along"')}`);
    const tar = join(mkdtempSync(join(tmpdir(), 'cvm-export-')), 'ws.tar');
    await a.cli.ok(['workspace', 'export', ws.id, '-o', tar]);
    const again = await a.cli.run(['workspace', 'export', ws.id, '-o', tar]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: .*ws\.tar already exists/);

    // Another server (another "host"): a new workspace with the files and the commit.
    const imported = JSON.parse((await b.cli.ok(['workspace', 'import', tar, '--json'])).stdout) as WorkspaceInfo;
    assert.notEqual(imported.id, ws.id);
    assert.equal(imported.projectDir, ws.projectDir);
    assert.equal(await sh(b.cli, imported.id, 'cat e.txt'), 'exported\n');
    assert.match(await sh(b.cli, imported.id, 'git log --oneline'), /to take along/);
    // Not an export: one line, and no workspace left behind.
    const junk = join(tmpdir(), `not-an-export-${randomBytes(3).toString('hex')}.tar`);
    writeFileSync(junk, 'hello');
    const refused = await b.cli.run(['workspace', 'import', junk]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: This is not a claude-vm workspace export \(no manifest\.json at its start\)\.$/m);
    assert.equal((await b.cli.json<WorkspaceInfo[]>(['workspace', 'list'])).length, 1);
    await b.cli.ok(['workspace', 'delete', imported.id, '--purge', '-y']);

    // Move: the workspace goes to another provider (here the local one) through its snapshot; once it is
    // restored there, the old container and volume go.
    await a.cli.ok(['provider', 'add', 'here', '--type', 'local']);
    const moved = await a.cli.ok(['workspace', 'up', ws.id, '--provider', 'here']);
    assert.match(moved.stdout, /Started workspace/);
    const after = await a.cli.json<WorkspaceInfo>(['workspace', 'show', ws.id]);
    assert.equal(after.provider, 'here');
    assert.ok(after.projectDir.startsWith(a.home), after.projectDir);
    assert.equal(await sh(a.cli, ws.id, 'cat e.txt'), 'exported\n');
    assert.match(await sh(a.cli, ws.id, 'git log --oneline'), /to take along/);
    assert.deepEqual(dockerResources(ws.id), { containers: [], volumes: [] });
    await a.cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await killHard(a.server);
    await killHard(b.server);
  }
});

test('a volume lost without a down: restored from an older snapshot, the conversation log is made whole and goes on', { timeout: 5 * 60_000 }, async () => {
  const s = await serverWith([]);
  const { cli } = s;
  try {
    await cli.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host', '--option', `control-plane-url=${s.server.url}`]);
    await cli.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', `ANTHROPIC_API_KEY=${SECRET}`]);
    const ws = JSON.parse((await cli.ok(['workspace', 'up', makeGitRepo('app'), '--provider', 'hostnet', '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
    model.enqueue({ text: 'one' });
    const conv = (await cli.ok(['new-chat', ws.id, '-m', 'first'])).stdout.trim();
    await turns(cli, conv, 1);
    await cli.ok(['workspace', 'snapshot', ws.id]);
    model.enqueue({ text: 'two' });
    await cli.ok(['send', conv, 'second']);
    const before = await turns(cli, conv, 2);

    // The container and its volume vanish (a host lost, say): no down, no last snapshot.
    docker('rm', '-f', `claude-vm-${ws.id}`);
    assert.equal(docker('volume', 'rm', `claude-vm-${ws.id}`).code, 0);
    const up = await cli.ok(['workspace', 'up', ws.id]);
    assert.match(up.stderr, /Restoring conversations: \d+ events newer than the snapshot/);

    model.enqueue({ text: 'three' });
    await cli.ok(['send', conv, 'third']);
    const after = await turns(cli, conv, 3);
    assert.deepEqual(after.slice(0, before.length), before, 'what was shown before is unchanged');
    assert.deepEqual(after.map((e) => e.seq), after.map((_, i) => i + 1), 'no gap, no duplicate');
    assert.equal((after.filter((e) => e.type === 'assistant.text').at(-1)!.data as { text: string }).text, 'three');
    const log = (await sh(cli, ws.id, `cat /workspace/.claude-vm/conversations/${conv}/events.jsonl`)).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AnyEvent).seq);
    assert.deepEqual(log, after.map((e) => e.seq), "the workspace's own log holds the same events");
    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await killHard(s.server);
  }
});

test('a running workspace is snapshotted every --snapshot-interval, only what changed each time', { timeout: 5 * 60_000 }, async () => {
  const s = await serverWith(['--snapshot-interval', '2s', '--policy-interval', '1s']);
  try {
    const ws = JSON.parse((await s.cli.ok(['workspace', 'up', makeGitRepo('app'), '--image', IMAGE, '--json'])).stdout) as WorkspaceInfo;
    const periodic = (n: number) =>
      until(`${n} periodic snapshots`, async () => {
        const list = (await s.cli.json<SnapshotInfo[]>(['workspace', 'snapshots', ws.id])).filter((x) => x.reason === 'periodic');
        return list.length >= n && list;
      }, { timeoutMs: 60_000, everyMs: 500 });
    const [first] = await periodic(1);
    await sh(s.cli, ws.id, 'head -c 500000 /dev/urandom > new.bin');
    const later = (await periodic(3)).filter((x) => x.createdAt > first!.createdAt);
    assert.ok(later.some((x) => x.newBytes >= 500_000), 'a later one holds the new file');
    assert.ok(later.filter((x) => x.newBytes < 500_000).every((x) => x.storedBytes < 100_000), 'the others store next to nothing');
    await s.cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
  } finally {
    await killHard(s.server);
  }
});

/** Every object the store holds (the filesystem store's directory, or the bucket). */
async function storeObjects(home: string, store: string): Promise<Array<{ key: string; body: Buffer }>> {
  if (store === 'filesystem') {
    const root = join(home, 'snapshots');
    if (!existsSync(root)) return [];
    const out: Array<{ key: string; body: Buffer }> = [];
    const walk = (dir: string, rel: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name), `${rel}${e.name}/`);
        else out.push({ key: rel + e.name, body: readFileSync(join(dir, e.name)) });
      }
    };
    walk(root, '');
    return out;
  }
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  const list = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
  return Promise.all((list.Contents ?? []).map(async (o) => ({ key: o.Key!, body: Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: o.Key! }))).Body!.transformToByteArray()) })));
}
