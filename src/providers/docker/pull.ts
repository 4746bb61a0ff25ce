/** @module Pulls a missing image with progress, turning registry failures into one actionable sentence. */
import { UserError } from '../../protocol/errors.js';
import type { ProgressFn } from '../../protocol/types.js';
import type { Engine } from './engine.js';
import { DEFAULT_IMAGE } from '../../core/defaults.js';

interface PullMessage {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

export async function pullImage(engine: Engine, image: string, progress?: ProgressFn): Promise<void> {
  progress?.({ step: 'Pulling image', detail: image });
  const hint =
    image === DEFAULT_IMAGE
      ? 'Build it with `claude-vm image build` (or `claude-vm image build --offline` without registry access).'
      : 'Check the name, `docker login` for private registries, or build it locally.';
  const [name, tag] = splitTag(image);
  try {
    const res = await engine.stream('POST', `/images/create?fromImage=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`);
    // The body is JSON lines; a failure mid-pull arrives as an `error` line with HTTP 200.
    let buffered = '';
    for await (const chunk of res) {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) {
        const m = JSON.parse(line) as PullMessage;
        if (m.error) throw new Error(m.errorDetail?.message ?? m.error);
        const d = m.progressDetail;
        progress?.({ step: 'Pulling image', detail: [m.id, m.status].filter(Boolean).join(' '), ...(d?.total ? { fraction: (d.current ?? 0) / d.total } : {}) });
      }
    }
  } catch (e) {
    const why = (e as Error).message.split('\n')[0]!.slice(0, 200);
    throw new UserError('image_missing', `Image ${image} is not available locally and could not be pulled (${why}).`, hint, { cause: e });
  }
}

/** `repo/name:tag` → [`repo/name`, `tag`]; a registry port (`host:5000/x`) is not a tag. */
function splitTag(image: string): [string, string] {
  const at = image.lastIndexOf(':');
  if (at > image.lastIndexOf('/')) return [image.slice(0, at), image.slice(at + 1)];
  return [image, 'latest'];
}
