/** @module Pulls a missing image with progress, turning registry failures into one actionable sentence. */
import type Docker from 'dockerode';
import { UserError } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import { dockerMessage } from './engine.js';
import { DEFAULT_IMAGE } from '../../core/defaults.js';

export async function pullImage(docker: Docker, image: string, progress?: ProgressFn): Promise<void> {
  progress?.({ step: 'Pulling image', detail: image });
  const hint =
    image === DEFAULT_IMAGE
      ? 'Build it with `claude-vm image build` (or `claude-vm image build --offline` without registry access).'
      : 'Check the name, `docker login` for private registries, or build it locally.';
  try {
    const stream = await docker.pull(image);
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (e: { status?: string; id?: string; progressDetail?: { current?: number; total?: number } }) => {
          const d = e.progressDetail;
          progress?.({ step: 'Pulling image', detail: [e.id, e.status].filter(Boolean).join(' '), ...(d?.total ? { fraction: (d.current ?? 0) / d.total } : {}) });
        },
      );
    });
  } catch (e) {
    throw new UserError('image_missing', `Image ${image} is not available locally and could not be pulled (${firstLine(dockerMessage(e))}).`, hint, { cause: e });
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 200);
}
