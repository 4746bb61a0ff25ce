/** @module Seals secret values at rest (AES-256-GCM) with a per-home key file readable only by its owner. */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = 'sealed:v1:';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** Loads `<home>/secret.key`, creating it (mode 0600) on first use. */
  static forHome(home: string): SecretBox {
    const file = join(home, 'secret.key');
    if (!existsSync(file)) {
      // 'wx' so two first runs racing cannot overwrite each other's key.
      try {
        writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    chmodSync(file, 0o600);
    return new SecretBox(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
  }

  /** A key kept outside the database (and outside any home), e.g. shared by the processes of a team deployment. */
  static fromFile(file: string): SecretBox {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new Error(`cannot read secret key file ${file}: ${(e as Error).message}`);
    }
    const key = Buffer.from(text, 'base64');
    if (key.length !== 32) throw new Error(`secret key file ${file} must hold 32 bytes in base64 (make one with: openssl rand -base64 32)`);
    return new SecretBox(key);
  }

  /** A MAC under a key derived from this one: how processes sharing the key recognise each other. */
  mac(purpose: string, data: string): string {
    const derived = createHmac('sha256', this.key).update(`claude-vm:${purpose}`).digest();
    return createHmac('sha256', derived).update(data).digest('hex');
  }

  /** A separate key for one purpose (e.g. encrypting snapshots), so no two uses ever share key material. */
  derive(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`claude-vm:key:${purpose}`).digest();
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  open(sealed: string): string {
    if (!sealed.startsWith(PREFIX)) return sealed;
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }
}

/** Option names whose values are credentials: stored sealed, shown masked. */
export function isSecretOption(name: string): boolean {
  return /token|secret|password|passphrase|api[_-]?key|private[_-]?key|credential/i.test(name);
}

export const MASK = '********';
