/**
 * What the web UI stands on, through the real control plane: one-time login links, changes since the workspace
 * began (git and non-git) with commit, the live stream, and notifications reaching a webhook.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cli, makeGitRepo } from './support/cli.js';
import { freePort, killHard, startServerProcess } from './support/cp-process.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

test('web support: a login link works once; changes and commit; the live stream; a webhook notification', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cvm-web-'));
  const server = await startServerProcess(home, { port: await freePort() });
  const cli = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  const api = (method: string, path: string, body?: unknown) =>
    fetch(server.url + path, { method, headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  try {
    // A login link: a session cookie once, never again.
    const link = (await cli.ok(['web', '--no-open'])).stdout.trim();
    assert.match(link, new RegExp(`^${server.url}/login\\?code=cvm_`));
    const first = await fetch(link, { redirect: 'manual' });
    assert.equal(first.status, 303);
    const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0]!;
    assert.match(cookie, /^cvm_session=cvm_/);
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { cookie } });
    assert.equal(me.status, 200);
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 401, 'a login link works once');

    // Changes since the workspace began, in a git project: a modified tracked file and a new one; then commit.
    const repo = makeGitRepo('web');
    const ws = JSON.parse((await cli.ok(['workspace', 'up', repo, '--provider', 'local', '--json'])).stdout) as WorkspaceInfo;
    await cli.ok(['exec', ws.id, '--', 'sh', '-c', 'echo "more" >> README.md && echo new > added.txt']);
    const changes = (await (await api('GET', `/api/v1/workspaces/${ws.id}/changes`)).json()) as { files: Array<{ path: string; status: string }>; diff: string };
    const byPath = Object.fromEntries(changes.files.map((f) => [f.path, f.status]));
    assert.equal(byPath['README.md'], 'modified');
    assert.equal(byPath['added.txt'], 'untracked');
    assert.equal(byPath['untracked.txt'], 'untracked');
    assert.match(changes.diff, /\+more/);
    assert.match(changes.diff, /\+new/);
    const commit = (await (await api('POST', `/api/v1/workspaces/${ws.id}/git/commit`, { message: 'from the web' })).json()) as { commit: string; pushed: boolean };
    assert.match(commit.commit, /^[0-9a-f]{40}$/);
    assert.equal(commit.pushed, false);
    assert.match((await cli.ok(['exec', ws.id, '--', 'git', 'log', '-1', '--format=%s'])).stdout, /^from the web$/m);
    // Since the workspace began, not since the last commit: the committed work still shows.
    const after = (await (await api('GET', `/api/v1/workspaces/${ws.id}/changes`)).json()) as { files: Array<{ path: string; status: string }> };
    assert.deepEqual(after.files.map((f) => f.path).sort(), ['README.md', 'added.txt', 'untracked.txt']);

    // A project that is not a git repository is compared with a baseline taken when it began.
    const plain = JSON.parse((await cli.ok(['workspace', 'up', '--provider', 'local', '--json'])).stdout) as WorkspaceInfo;
    await cli.ok(['exec', plain.id, '--', 'sh', '-c', 'echo hello > notes.txt']);
    const plainChanges = (await (await api('GET', `/api/v1/workspaces/${plain.id}/changes`)).json()) as { files: Array<{ path: string; status: string }>; diff: string };
    assert.deepEqual(plainChanges.files, [{ path: 'notes.txt', status: 'untracked' }]);
    assert.match(plainChanges.diff, /\+hello/);
    const refused = await api('POST', `/api/v1/workspaces/${plain.id}/git/commit`, { message: 'x' });
    assert.equal(refused.status, 409);

    // The live stream starts with a snapshot of the user's workspaces.
    const stream = await fetch(`${server.url}/api/v1/stream`, { headers: { cookie } });
    assert.equal(stream.headers.get('content-type')?.split(';')[0], 'text/event-stream');
    const reader = stream.body!.getReader();
    let text = '';
    while (!text.includes('event: approvals')) text += Buffer.from((await reader.read()).value ?? []).toString();
    await reader.cancel();
    assert.match(text, /event: workspaces\ndata: \[/);
    assert.ok(text.includes(ws.id) && text.includes(plain.id));

    // A webhook (ntfy-style) gets the notification.
    const got: Array<{ title: string | undefined; body: string }> = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => (got.push({ title: req.headers.title as string | undefined, body }), res.end('ok')));
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/cvm`;
    assert.equal((await api('PUT', '/api/v1/notifications', { webhookUrl: hookUrl })).status, 200);
    const sent = (await (await api('POST', '/api/v1/notifications/test')).json()) as { webhook: boolean };
    assert.equal(sent.webhook, true);
    assert.deepEqual(got, [{ title: 'claude-vm test', body: 'Notifications reach you.' }]);
    hook.close();
    const settings = (await (await api('GET', '/api/v1/notifications')).json()) as { webhookUrl: string; vapidPublicKey: string };
    assert.equal(settings.webhookUrl, hookUrl);
    assert.match(settings.vapidPublicKey, /^[A-Za-z0-9_-]{80,}$/);

    await cli.ok(['workspace', 'delete', ws.id, '--purge', '-y']);
    await cli.ok(['workspace', 'delete', plain.id, '--purge', '-y']);
  } finally {
    await killHard(server);
  }
});
