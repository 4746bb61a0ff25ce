/**
 * Workspaces on Kubernetes, as a user of a cluster would run them. No real API server can run on this machine, so
 * the cluster is a stand-in (support/kube-standin.ts) that checks every exchange against the published Kubernetes
 * OpenAPI spec and backs each pod with a real container on the local dockerd: the workspace daemon really runs
 * there and dials the control plane at its --public-url, as it would from a cluster.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Cli, IMAGE, docker, makeGitRepo } from './support/cli.js';
import { until } from './support/wait.js';
import { freePort, killHard, startServerProcess, type ServerProcess } from './support/cp-process.js';
import { KubeStandIn } from './support/kube-standin.js';
import { kubernetesProviderFactory } from '../src/providers/kubernetes/index.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

let cluster: KubeStandIn;
let kubeconfig: string;
before(async () => {
  cluster = await KubeStandIn.start();
  kubeconfig = cluster.writeKubeconfig(mkdtempSync(join(tmpdir(), 'cvm-kube-')));
});
after(async () => {
  await cluster?.close();
});

const optionArgs = (o: Record<string, string>) => Object.entries(o).flatMap(([k, v]) => ['--option', `${k}=${v}`]);
const kinds = ['secrets', 'persistentvolumeclaims', 'statefulsets', 'pods'] as const;
const objectNames = () => kinds.flatMap((k) => cluster.objects(k).map((o) => `${k}/${o.metadata.name}`)).sort();
const labelled = (what: 'ps' | 'volume') =>
  docker(...(what === 'ps' ? ['ps', '-a'] : ['volume', 'ls']), '--filter', `label=${cluster.id}`, '--format', what === 'ps' ? '{{.Names}}' : '{{.Name}}').out.split('\n').filter(Boolean);

test('bad options, an unreachable cluster, an image it cannot pull and a missing control-plane URL are one clear error each, and leave nothing behind', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-k8s-bad-'));
  const server = await startServerProcess(home, { port: await freePort() });
  const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  try {
    const badNs = await cli.run(['provider', 'add', 'k8s', '--type', 'kubernetes', '--option', 'namespace=Not_A_Namespace']);
    assert.equal(badNs.code, 1);
    assert.match(badNs.stderr, /^error: "Not_A_Namespace" is not a Kubernetes namespace name\.\nhint: /);

    const closed = await freePort();
    // A kubeconfig whose cluster is a port nobody listens on.
    const gone = cluster.writeKubeconfig(mkdtempSync(join(tmpdir(), 'cvm-kube-gone-')));
    writeFileSync(gone, readFileSync(gone, 'utf8').replace(cluster.url, `http://127.0.0.1:${closed}`));
    await cli.ok(['provider', 'add', 'nowhere', '--type', 'kubernetes', ...optionArgs({ kubeconfig: gone, context: 'standin' })]);
    const unreachable = await cli.run(['workspace', 'up', makeGitRepo('nowhere'), '--provider', 'nowhere', '--image', IMAGE]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /error: Cannot reach the Kubernetes API server of context standin \(.*\)\.\nhint: Check `kubectl version`/);

    // This server has no --public-url: a pod in a cluster could not dial it back.
    await cli.ok(['provider', 'add', 'k8s', '--type', 'kubernetes', ...optionArgs({ kubeconfig, namespace: cluster.namespace })]);
    const noUrl = await cli.run(['workspace', 'up', makeGitRepo('no-url'), '--provider', 'k8s', '--image', IMAGE]);
    assert.equal(noUrl.code, 1);
    assert.match(noUrl.stderr, /error: Kubernetes workspaces need a URL to reach the control plane, and none is set\.\nhint: Start the server with `claude-vm server --public-url/);
    assert.deepEqual(await cli.json<unknown[]>(['workspace', 'list']), []);
    // As on a real cluster, a deleted claim goes once its pod has: the failed up asked for all of it to go.
    await until('the failed up to leave nothing on the cluster', () => objectNames().length === 0 && labelled('volume').length === 0, { explain: () => objectNames().join(', ') });
    assert.deepEqual(labelled('ps'), []);

    // An image the cluster cannot pull fails with Kubernetes' reason, not after a long wait, and is rolled back.
    const noImage = await cli.run(['workspace', 'up', makeGitRepo('no-image'), '--provider', 'k8s', '--image', `${cluster.id}/no-such-image:1`]);
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /error: The workspace pod cannot start: ErrImagePull: image \S+ is not on the stand-in's Docker engine\.\nhint: See `kubectl -n k8sstandin-\w+ describe pod claude-vm-/);
    await until('the failed up to leave nothing on the cluster', () => objectNames().length === 0, { explain: () => objectNames().join(', ') });

    const missingNs = await cli.run(['provider', 'set-options', 'k8s', '--option', 'namespace=no-such-ns']);
    assert.equal(missingNs.code, 0);
    const noNs = await cli.run(['workspace', 'up', makeGitRepo('no-ns'), '--provider', 'k8s', '--image', IMAGE]);
    assert.equal(noNs.code, 1);
    assert.match(noNs.stderr, /error: Kubernetes could not create the workspace in namespace no-such-ns: namespaces "no-such-ns" not found\.\nhint: Does namespace no-such-ns exist\?/);
  } finally {
    await killHard(server);
  }
  assert.deepEqual(cluster.violations, []);
});

test('a workspace on Kubernetes runs the daemon, keeps its volume claim across down/up, and is gone after delete --purge', { timeout: 10 * 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-k8s-'));
  const port = await freePort();
  // The stand-in's pods share the host's network, so the control plane's public URL is on loopback.
  const server: ServerProcess = await startServerProcess(home, { port, args: ['--public-url', `http://127.0.0.1:${port}`] });
  const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  try {
    await cli.ok(['provider', 'add', 'k8s', '--type', 'kubernetes', ...optionArgs({ kubeconfig, namespace: cluster.namespace, 'storage-class': 'fast-ssd', 'storage-size': '5Gi', 'price-per-hour': '0.2' })]);
    const up = await cli.ok(['workspace', 'up', makeGitRepo('kube-app'), '--provider', 'k8s', '--image', IMAGE, '--size', 'small', '--json']);
    const ws = JSON.parse(up.stdout) as WorkspaceInfo;
    assert.equal(ws.status, 'running');
    assert.equal(ws.providerType, 'kubernetes');
    for (const step of ['Creating secret', 'Creating volume claim', 'Creating stateful set', 'Starting pod', 'Waiting for the workspace to be ready', 'Connecting workspace daemon']) {
      assert.ok(up.stderr.includes(step), `progress shows "${step}":\n${up.stderr}`);
    }

    // The shape on the cluster: one Secret, one claim, one StatefulSet with one pod.
    const name = `claude-vm-${ws.id}`;
    assert.deepEqual(objectNames(), [`persistentvolumeclaims/${name}`, `pods/${name}-0`, `secrets/${name}`, `statefulsets/${name}`]);
    const claim = cluster.objects('persistentvolumeclaims')[0]!;
    assert.equal(claim.spec.storageClassName, 'fast-ssd');
    assert.equal(claim.spec.resources.requests.storage, '5Gi');
    const secret = cluster.objects('secrets')[0]!;
    assert.equal(Buffer.from(secret.data.CLAUDE_VM_WORKSPACE_ID, 'base64').toString(), ws.id);
    const container = cluster.objects('statefulsets')[0]!.spec.template.spec.containers[0];
    assert.equal(container.env, undefined, 'the environment is not written into the pod spec');
    assert.deepEqual(container.envFrom, [{ secretRef: { name } }]);
    assert.deepEqual(container.resources.limits, { cpu: '1', memory: '2048Mi' });

    // exec: input, both outputs kept apart, and the exit code (from the status channel).
    const piped = await cli.run(['exec', ws.id, '--', 'sh', '-c', 'tr a-z A-Z; echo oops >&2; exit 42'], { input: 'hello\n' });
    assert.equal(piped.code, 42);
    assert.equal(piped.stdout, 'HELLO\n');
    assert.equal(piped.stderr, 'oops\n');
    const inside = await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'pwd; id -un; cat README.md; echo "$CLAUDE_VM_WORKSPACE_ID"']);
    assert.equal(inside.stdout, `/workspace/kube-app\ndev\n# demo\n${ws.id}\n`);
    const daemon = await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'pgrep -f "daemon/main.js serve" >/dev/null && echo daemon-running']);
    assert.equal(daemon.stdout, 'daemon-running\n');

    // A terminal: its size is set at start and follows a resize (channel 4).
    const { KubernetesProvider } = await import('../src/providers/kubernetes/provider.js');
    const provider = new KubernetesProvider({ kubeconfig, namespace: cluster.namespace }, kubernetesProviderFactory.sizes);
    const refs = { pod: `${cluster.namespace}/${name}-0`, statefulSet: `${cluster.namespace}/${name}` };
    const input = new PassThrough();
    let screen = '';
    const out = new PassThrough().on('data', (d: Buffer) => (screen += d));
    const script = 'stty size; while read l; do [ "$l" = q ] && exit 7; stty size; done';
    const h = await provider.exec(refs, { argv: ['sh', '-c', script], tty: { rows: 30, cols: 100 }, stdin: input, stdout: out });
    // Sizes and input are separate channels, applied in no promised order: ask again until the size shows.
    await until('the first terminal size', () => (input.write('\n'), screen.includes('30 100')), { explain: () => screen });
    h.resize(50, 132);
    await until('the resized terminal', () => (input.write('\n'), screen.includes('50 132')), { explain: () => screen });
    input.write('q\n');
    assert.equal(await h.exit, 7);

    await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'echo kept > made-on-kube.txt']);
    const down = await cli.ok(['workspace', 'down', ws.id]);
    assert.match(down.stdout, /Stopped workspace/);
    assert.equal(cluster.objects('statefulsets')[0]!.spec.replicas, 0, 'down scales the stateful set to zero');
    assert.deepEqual(objectNames(), [`persistentvolumeclaims/${name}`, `secrets/${name}`, `statefulsets/${name}`], 'the pod is gone, the claim is kept');
    assert.deepEqual(labelled('ps'), []);
    assert.deepEqual((await cli.json<WorkspaceInfo[]>(['workspace', 'list', '--status', 'stopped'])).map((w) => w.id), [ws.id]);

    const resumed = await cli.ok(['workspace', 'up', ws.id]);
    assert.match(resumed.stdout, /Started workspace/);
    assert.equal((await cli.ok(['exec', ws.id, '--', 'cat', 'made-on-kube.txt'])).stdout, 'kept\n', 'the data survived on the claim');

    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
    await until('the claim and its volume to go', () => objectNames().length === 0 && labelled('volume').length === 0, { explain: () => objectNames().join(', ') });
    assert.deepEqual(await cli.json(['workspace', 'list']), []);
    assert.ok(cluster.calls.includes('PUT replaceAppsV1NamespacedStatefulSetScale'));
  } finally {
    await killHard(server);
  }
  assert.deepEqual(cluster.violations, [], `every exchange follows the Kubernetes API spec (${cluster.spec.source})`);
});

test('the price table scales the price-per-hour option by size', () => {
  const price = (size: string) => kubernetesProviderFactory.pricePerHour(size, { 'price-per-hour': '0.2' });
  assert.deepEqual([price('small'), price('medium'), price('large')], [0.1, 0.2, 0.4]);
  assert.equal(kubernetesProviderFactory.pricePerHour('medium', {}), 0);
});

test('the stand-in catches requests the spec does not allow', async () => {
  const { clusters } = JSON.parse(readFileSync(kubeconfig, 'utf8')) as { clusters: Array<{ cluster: Record<string, string> }> };
  const ca = Buffer.from(clusters[0]!.cluster['certificate-authority-data']!, 'base64');
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`${cluster.url}${path}`, { method, ca, headers: { Authorization: `Bearer ${cluster.token}`, 'Content-Type': 'application/json' } }, (res) => {
        res.resume().on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject).end(body === undefined ? undefined : JSON.stringify(body));
    });
  assert.equal(await call('GET', `/api/v1/namespaces/${cluster.namespace}/secrets/none?colour=blue`), 404);
  // A namespace that does not exist, so the stand-in refuses it before echoing the body back.
  assert.equal(await call('POST', '/api/v1/namespaces/no-such-ns/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'typo' }, stringdata: { a: 'b' }, data: { n: 5 } }), 404);
  assert.equal(await call('POST', `/api/v1/namespaces/${cluster.namespace}/pods/x/teleport`), 404);
  assert.deepEqual(cluster.violations.splice(0), [
    'readCoreV1NamespacedSecret: query parameter "colour" is not in the spec',
    'createCoreV1NamespacedSecret: body.stringdata is not in the spec',
    'createCoreV1NamespacedSecret: body.data.n: expected a string, got number 5',
    `POST /api/v1/namespaces/${cluster.namespace}/pods/x/teleport: no such operation in the Kubernetes API`,
  ]);
});
