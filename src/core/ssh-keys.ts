/**
 * @module Ed25519 keys in OpenSSH's own formats, made with Node's crypto: workspace host keys (made by the
 * control plane, kept sealed in its database, so a workspace keeps its host key across down/up, restores and
 * providers) and the CLI's own client key. No ssh-keygen needed on either side.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { UserError } from '../protocol/errors.js';

export interface SshKeyPair {
  /** "-----BEGIN OPENSSH PRIVATE KEY-----" … */
  privateKey: string;
  /** "ssh-ed25519 AAAA… comment" */
  publicKey: string;
}

const str = (b: Buffer | string) => {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

export function generateSshKey(comment: string): SshKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as { d: string; x: string };
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x, 'base64url');
  const blob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  const check = randomBytes(4).readUInt32BE(0);
  let secret = Buffer.concat([u32(check), u32(check), str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  // Padded to the cipher block size (8 for "none") with 1, 2, 3…
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(blob), str(secret)]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
  };
}

/** Checks an authorized_keys-style public key line and returns it normalized, with its SHA256 fingerprint. */
export function parsePublicKey(line: string): { publicKey: string; type: string; fingerprint: string; comment: string } {
  const m = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)\s+([A-Za-z0-9+/]+={0,3})(?:\s+(.*))?$/.exec(line.trim());
  if (!m) throw new UserError('invalid_argument', 'That is not an SSH public key.', 'Pass a line like "ssh-ed25519 AAAA… you@laptop" (the .pub file).');
  const blob = Buffer.from(m[2]!, 'base64');
  const inner = blob.length > 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString() : '';
  if (inner !== m[1]) throw new UserError('invalid_argument', 'That SSH public key is damaged (its type does not match its data).');
  const comment = (m[3] ?? '').trim();
  return {
    publicKey: `${m[1]} ${m[2]}${comment ? ` ${comment}` : ''}`,
    type: m[1]!,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    comment,
  };
}
