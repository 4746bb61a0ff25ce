/**
 * The daemon's own WebSocket client (src/daemon/ws-client.ts) against the `ws` server the control plane runs: over a
 * unix socket as local workspaces dial, and over wss as remote ones (Fly, Kubernetes) dial a public control plane.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { WsClient } from '../src/daemon/ws-client.js';
import { selfSignedCertificate } from './support/tls.js';

/** A control-plane-like server: upgrades requests carrying the right token, refuses the rest with 401. */
function serve(server: Server): { accepted: Promise<{ ws: WebSocket; req: IncomingMessage }> } {
  const wss = new WebSocketServer({ noServer: true });
  let accept!: (v: { ws: WebSocket; req: IncomingMessage }) => void;
  const accepted = new Promise<{ ws: WebSocket; req: IncomingMessage }>((r) => (accept = r));
  server.on('upgrade', (req, socket, head) => {
    if (req.headers.authorization !== 'Bearer right') return void socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => accept({ ws, req }));
  });
  return { accepted };
}

async function messages(client: WsClient, n: number): Promise<Array<[Buffer, boolean]>> {
  const got: Array<[Buffer, boolean]> = [];
  return new Promise((resolve) => {
    const on = (data: Buffer, binary: boolean) => {
      got.push([data, binary]);
      if (got.length === n) (client.off('message', on), resolve(got));
    };
    client.on('message', on);
  });
}

test('over a unix socket: text and binary of every length class both ways, fragments, pings and the close code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-ws-'));
  const server = createHttpServer();
  const { accepted } = serve(server);
  server.listen(join(dir, 'cp.sock'));
  await once(server, 'listening');
  try {
    const client = new WsClient(`ws+unix://${join(dir, 'cp.sock')}:/api/v1/tunnel?x=1`, { headers: { Authorization: 'Bearer right' } });
    await once(client, 'open');
    const { ws, req } = await accepted;
    assert.equal(req.url, '/api/v1/tunnel?x=1');

    const sizes = [0, 1, 125, 126, 65535, 65536, 3 << 20];
    const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const atServer: Array<[Buffer, boolean]> = [];
    ws.on('message', (d: Buffer, binary) => atServer.push([d, binary]));
    for (const p of payloads) client.send(p);
    client.send('{"t":"hello","text":"ünïcode"}');
    while (atServer.length < payloads.length + 1) await new Promise((r) => setTimeout(r, 10));
    payloads.forEach((p, i) => assert.ok(atServer[i]![1] && atServer[i]![0].equals(p), `binary message of ${p.length} bytes arrived whole`));
    assert.deepEqual([atServer.at(-1)![0].toString(), atServer.at(-1)![1]], ['{"t":"hello","text":"ünïcode"}', false]);

    const back = messages(client, payloads.length + 2);
    for (const p of payloads) ws.send(p);
    ws.send('plain text');
    // One message in three frames, as servers may send large ones.
    ws.send(Buffer.from('frag-'), { binary: true, fin: false });
    ws.send(Buffer.from('ment'), { binary: true, fin: false });
    ws.send(Buffer.from('ed'), { binary: true, fin: true });
    const got = await back;
    payloads.forEach((p, i) => assert.ok(got[i]![1] && got[i]![0].equals(p), `binary message of ${p.length} bytes came back whole`));
    assert.deepEqual([got[payloads.length]![0].toString(), got[payloads.length]![1]], ['plain text', false]);
    assert.deepEqual([got[payloads.length + 1]![0].toString(), got[payloads.length + 1]![1]], ['frag-mented', true]);

    // Its pings are answered by the server, and the server's are answered by it.
    client.ping();
    await once(client, 'pong');
    ws.ping(Buffer.from('are you there'));
    const [pong] = (await once(ws, 'pong')) as [Buffer];
    assert.equal(pong.toString(), 'are you there');

    // The server's close code and reason reach the tunnel.
    const closed = once(client, 'close');
    ws.close(4001, 'replaced by a newer connection');
    assert.deepEqual(await closed, [4001, 'replaced by a newer connection']);
    assert.equal(client.state, 'closed');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refused token is reported as the HTTP status, and the daemon closing says why to the server', async () => {
  const server = createHttpServer();
  const { accepted } = serve(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/tunnel`;
  try {
    const refused = new WsClient(url, { headers: { Authorization: 'Bearer wrong' } });
    let opened = false;
    refused.on('open', () => (opened = true));
    const [code, why] = (await once(refused, 'close')) as [number, string];
    assert.deepEqual([opened, refused.refused, code, why], [false, 401, 1006, 'HTTP 401']);

    const client = new WsClient(url, { headers: { Authorization: 'Bearer right' } });
    await once(client, 'open');
    const { ws } = await accepted;
    const serverSaw = once(ws, 'close');
    const clientSaw = once(client, 'close');
    client.close(1001, 'workspace daemon stopping');
    const [code2, reason] = (await serverSaw) as [number, Buffer];
    assert.deepEqual([code2, reason.toString()], [1001, 'workspace daemon stopping']);
    assert.equal(((await clientSaw) as [number])[0], 1001);
  } finally {
    server.close();
  }
});

test('wss with a certificate the daemon trusts; an untrusted one and a silent server fail with a reason', async () => {
  const { key, cert } = selfSignedCertificate();
  const server = createHttpsServer({ key, cert });
  const { accepted } = serve(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const silent = createTcpServer(() => undefined).listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/tunnel`;
  try {
    const client = new WsClient(url, { headers: { Authorization: 'Bearer right' }, tls: { ca: cert } });
    await once(client, 'open');
    const { ws } = await accepted;
    const echoed = messages(client, 1);
    ws.on('message', (d: Buffer, binary) => ws.send(d, { binary }));
    client.send('over tls');
    assert.equal((await echoed)[0]![0].toString(), 'over tls');
    client.terminate();

    const untrusted = new WsClient(url, { headers: { Authorization: 'Bearer right' } });
    const [, why] = (await once(untrusted, 'close')) as [number, string];
    assert.match(why, /self.signed|certificate/i);

    const mute = new WsClient(`ws://127.0.0.1:${(silent.address() as AddressInfo).port}/`, { handshakeTimeout: 300 });
    assert.deepEqual(await once(mute, 'close'), [1006, 'the upgrade timed out']);
  } finally {
    server.close();
    silent.close();
  }
});

test('an address that is not a WebSocket URL is refused at once', () => {
  assert.throws(() => new WsClient('http://example.com/'), /not a ws:, wss: or ws\+unix: URL/);
  assert.throws(() => new WsClient('ws+unix:///tmp/no-path'), /names no request path/);
});
