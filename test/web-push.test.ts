/**
 * Web Push as a phone's browser receives it, with the push service played by a local HTTPS server that follows
 * RFC 8030 (it answers 201 Created, or 410 Gone for a subscription that expired). The test holds the browser's
 * side of the subscription (its P-256 key pair and auth secret), so it can check the VAPID signature (RFC 8292) and
 * decrypt the message (RFC 8291, aes128gcm) exactly as the browser would, then read what the notification says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killHard, startServerProcess } from './support/cp-process.js';
import { selfSignedCertificate } from './support/tls.js';

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** RFC 8291: the browser's side of decrypting one aes128gcm message. */
function decrypt(body: Buffer, ua: ReturnType<typeof createECDH>, authSecret: Buffer): string {
  const salt = body.subarray(0, 16);
  const idLen = body[20]!;
  const asPublic = body.subarray(21, 21 + idLen);
  const ciphertext = body.subarray(21 + idLen);
  const ecdhSecret = ua.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ua.getPublicKey(), asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 0x02, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  assert.equal(padded[end], 2, 'a last-record delimiter');
  return padded.subarray(0, end).toString('utf8');
}

/** RFC 8292: `vapid t=<JWT>, k=<public key>`, the JWT signed with ES256 by that key, for this push service. */
function checkVapid(authorization: string, vapidPublicKey: string, audience: string): { sub: string; exp: number } {
  const m = /^vapid t=([^,]+),\s*k=(\S+)$/.exec(authorization);
  assert.ok(m, `a VAPID Authorization header: ${authorization}`);
  assert.equal(m[2], vapidPublicKey, 'signed with the key the control plane hands to browsers');
  const [head, payload, sig] = m[1]!.split('.') as [string, string, string];
  const raw = Buffer.from(vapidPublicKey, 'base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64url(raw.subarray(1, 33)), y: b64url(raw.subarray(33, 65)) }, format: 'jwk' });
  assert.ok(verify('sha256', Buffer.from(`${head}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url')), 'the JWT signature verifies');
  assert.deepEqual(JSON.parse(Buffer.from(head, 'base64url').toString()), { typ: 'JWT', alg: 'ES256' });
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { aud: string; exp: number; sub: string };
  assert.equal(claims.aud, audience);
  return claims;
}

test('Web Push reaches the browser signed and encrypted; a subscription the push service says is gone is dropped', { timeout: 120_000 }, async () => {
  const tls = selfSignedCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'cvm-push-'));
  writeFileSync(join(dir, 'cert.pem'), tls.cert);
  const deliveries: Delivery[] = [];
  const pushService = createServer(tls, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      deliveries.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(parts) });
      res.writeHead(req.url === '/push/expired' ? 410 : 201).end();
    });
  });
  const pushPort = await freePort();
  await new Promise<void>((r) => pushService.listen(pushPort, '127.0.0.1', r));
  const origin = `https://127.0.0.1:${pushPort}`;

  const home = mkdtempSync(join(tmpdir(), 'cvm-push-home-'));
  // The control plane trusts this push service's certificate, as it trusts the real ones' through the system store.
  const server = await startServerProcess(home, { port: await freePort(), env: { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } });
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, { method, headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  try {
    // The browser's side of two subscriptions: the phone's, and an old one the push service has expired.
    const ua = createECDH('prime256v1');
    ua.generateKeys();
    const authSecret = randomBytes(16);
    for (const path of ['/push/phone', '/push/expired']) {
      const r = await api('POST', '/api/v1/notifications/subscriptions', { endpoint: `${origin}${path}`, keys: { p256dh: b64url(ua.getPublicKey()), auth: b64url(authSecret) } });
      assert.equal(r.status, 201, await r.text());
    }
    const bad = await api('POST', '/api/v1/notifications/subscriptions', { endpoint: 'http://127.0.0.1/push', keys: { p256dh: 'x', auth: 'y' } });
    assert.equal(bad.status, 400, 'a push endpoint must be https');
    const settings = (await (await api('GET', '/api/v1/notifications')).json()) as { vapidPublicKey: string; subscriptions: number };
    assert.equal(settings.subscriptions, 2);

    const sent = (await (await api('POST', '/api/v1/notifications/test')).json()) as { push: number };
    assert.equal(sent.push, 1, 'delivered to the phone; the expired subscription failed');

    const phone = deliveries.find((d) => d.path === '/push/phone');
    assert.ok(phone, `the push service got the message: ${JSON.stringify(deliveries.map((d) => d.path))}`);
    assert.equal(phone.headers['content-encoding'], 'aes128gcm');
    assert.equal(phone.headers.ttl, '3600');
    const claims = checkVapid(String(phone.headers.authorization), settings.vapidPublicKey, origin);
    assert.ok(claims.exp * 1000 > Date.now() && claims.exp * 1000 <= Date.now() + 24 * 3600_000, 'the JWT expires within a day');
    assert.match(claims.sub, /^(mailto:|https:)/);
    const message = JSON.parse(decrypt(phone.body, ua, authSecret)) as { kind: string; title: string; body: string };
    assert.deepEqual([message.kind, message.title, message.body], ['turn.completed', 'claude-vm test', 'Notifications reach you.']);

    // RFC 8030: 410 Gone means the subscription is over; it is not tried again.
    assert.equal(((await (await api('GET', '/api/v1/notifications')).json()) as { subscriptions: number }).subscriptions, 1);
  } finally {
    await killHard(server);
    pushService.close();
  }
});
