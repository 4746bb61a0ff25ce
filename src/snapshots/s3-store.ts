/** @module Snapshots in any S3-compatible bucket (AWS, MinIO, R2, Ceph…), through @aws-sdk/client-s3. */
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { UserError } from '../protocol/errors.js';
import type { ObjectStore } from './store.js';

export class S3Store implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    readonly description: string,
  ) {}

  /** s3://bucket[/prefix]?endpoint=URL&region=R&path-style=1 */
  static fromUrl(spec: string): S3Store {
    const url = new URL(spec);
    const bucket = url.hostname;
    if (!bucket) throw new UserError('invalid_argument', `The snapshot store "${spec}" names no bucket.`, 'Use s3://bucket/prefix.');
    const endpoint = url.searchParams.get('endpoint') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? undefined;
    // The SDK's notice that its 2027 releases will need Node 22 is not this server's operator's concern today.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const client = new S3Client({
      endpoint,
      region: url.searchParams.get('region') ?? process.env.AWS_REGION ?? 'us-east-1',
      // Other S3-compatible servers mostly want bucket names in the path, not the host name.
      forcePathStyle: url.searchParams.get('path-style') !== '0' && !!endpoint,
      // Checksums only where S3 requires them: many compatible servers do not understand the newer trailing ones.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 5,
    });
    const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
    return new S3Store(client, bucket, prefix ? `${prefix}/` : '', `s3://${bucket}/${prefix}${endpoint ? ` at ${new URL(endpoint).host}` : ''}`);
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.call(() => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: body })));
  }

  async get(key: string): Promise<Buffer> {
    const r = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })), key);
    return Buffer.from(await r.Body!.transformToByteArray());
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.call(() => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token })));
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key.slice(this.prefix.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((k) => ({ Key: this.prefix + k }));
      await this.call(() => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } })));
    }
  }

  /** One sentence for what went wrong, naming the bucket; never the credentials. */
  private async call<T>(fn: () => Promise<T>, key?: string): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof S3ServiceException) {
        if (key && (e.name === 'NoSuchKey' || e.$metadata.httpStatusCode === 404)) throw new UserError('not_found', `Snapshot object ${key} is missing from ${this.description}.`);
        throw new UserError('provider_unavailable', `The snapshot store ${this.description} refused: ${e.name}${e.message ? `: ${e.message}` : ''}.`, 'Check the bucket, endpoint and AWS credentials.');
      }
      const err = e as NodeJS.ErrnoException;
      throw new UserError('provider_unavailable', `Cannot reach the snapshot store ${this.description}: ${err.code ?? err.message}.`, 'Check the endpoint, and that the server is up.');
    }
  }
}
