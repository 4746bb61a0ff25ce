/** @module A real S3-compatible server for the tests (s3rver, from npm), with one bucket and its own credentials. */
import S3rver from 's3rver';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestS3 {
  /** The snapshot store URL, e.g. s3://cvm/snapshots?endpoint=http://127.0.0.1:PORT */
  storeUrl: string;
  endpoint: string;
  bucket: string;
  /** What the server needs in its environment to sign requests. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startTestS3(bucket = 'cvm'): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'cvm-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    storeUrl: `s3://${bucket}/snapshots?endpoint=${encodeURIComponent(endpoint)}`,
    endpoint,
    bucket,
    // s3rver's fixed development credentials.
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
